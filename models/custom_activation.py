"""A custom activation y = sigmoid(x) * tanh(x) after a convolution."""

from __future__ import annotations

import torch
from torch import nn

from models._common import finish, randn


class SigmoidTanh(nn.Module):
    """y = sigmoid(x) * tanh(x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * torch.tanh(x)


class ConvCustomAct(nn.Module):
    """conv 3->8 then the custom activation."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = SigmoidTanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


def build() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The module and a 1x3x16x16 input."""
    torch.manual_seed(0)
    return finish(ConvCustomAct()), (randn(1, 3, 16, 16, offset=1),)
