"""One ``nn.TransformerEncoderLayer`` (batch_first, 4 heads, d_model 32, no dropout)."""

from __future__ import annotations

import torch
from torch import nn

from models._common import finish, randn


def build() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The layer (seeded weights) and a 2x10x32 (batch, sequence, feature) input."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(
        d_model=32, nhead=4, dim_feedforward=64, dropout=0.0, batch_first=True
    )
    return finish(layer), (randn(2, 10, 32, offset=1),)
