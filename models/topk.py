"""``torch.topk``: the k largest values along the last axis and their int64 indices."""

from __future__ import annotations

import torch
from torch import nn

from models._common import finish, randn


class TopK(nn.Module):
    """(values, indices) = topk(x, k, dim=-1), sorted descending."""

    def __init__(self, k: int = 5) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values, indices = torch.topk(x, self.k, dim=-1)
        return values, indices


def build() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The module and a 3x20 input (distinct values, so the indices are unambiguous)."""
    return finish(TopK()), (randn(3, 20, offset=1),)
