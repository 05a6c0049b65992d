"""Elementwise ``torch.maximum`` of two inputs: y = max(a, b)."""

from __future__ import annotations

import torch
from torch import nn

from models._common import finish, randn


class Maximum(nn.Module):
    """y = max(a, b), elementwise with broadcasting."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.maximum(a, b)


def build() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The module and two 2x3x8x8 inputs."""
    return finish(Maximum()), (randn(2, 3, 8, 8, offset=1), randn(2, 3, 8, 8, offset=2))
