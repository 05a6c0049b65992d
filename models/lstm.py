"""A two-layer batch_first ``nn.LSTM`` returning the sequence output and the final (h, c)."""

from __future__ import annotations

import torch
from torch import nn

from models._common import finish, randn


class LSTMModel(nn.Module):
    """(out, h, c) = LSTM(x) with zero initial state."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size=8, hidden_size=16, num_layers=2, batch_first=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out, (h, c) = self.lstm(x)
        return out, h, c


def build() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The module (seeded weights) and a 2x5x8 (batch, time, feature) input."""
    torch.manual_seed(0)
    return finish(LSTMModel()), (randn(2, 5, 8, offset=1),)
