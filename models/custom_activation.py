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


@torch.library.custom_op("examples::sigmoid_tanh", mutates_args=())
def sigmoid_tanh(x: torch.Tensor) -> torch.Tensor:
    """y = sigmoid(x) * tanh(x) as one torch op (translated by models/extensions/sigmoid_tanh.py)."""
    return torch.sigmoid(x) * torch.tanh(x)


@sigmoid_tanh.register_fake
def _sigmoid_tanh_fake(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class ConvCustomOp(ConvCustomAct):
    """conv 3->8 then the custom activation as the torch custom op ``examples::sigmoid_tanh``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sigmoid_tanh(self.conv(x))


def build_custom_op() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The model with the activation as one torch custom op, and a 1x3x16x16 input."""
    torch.manual_seed(0)
    return finish(ConvCustomOp()), (randn(1, 3, 16, 16, offset=1),)


def build() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The module and a 1x3x16x16 input."""
    torch.manual_seed(0)
    return finish(ConvCustomAct()), (randn(1, 3, 16, 16, offset=1),)
