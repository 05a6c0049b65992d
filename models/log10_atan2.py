"""``torch.log10`` and ``torch.atan2``: y1 = log10(x), y2 = atan2(a, b) over all four quadrants."""

from __future__ import annotations

import torch
from torch import nn

from models._common import finish, randn


class Log10Atan2(nn.Module):
    """(log10(x), atan2(a, b))."""

    def forward(
        self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.log10(x), torch.atan2(a, b)


def build() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The module, a strictly positive x (log10's domain) and signed a, b (all quadrants)."""
    x = randn(4, 16, offset=1).abs() + 0.05
    return finish(Log10Atan2()), (x, randn(4, 16, offset=2), randn(4, 16, offset=3))
