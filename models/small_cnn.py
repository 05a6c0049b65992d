"""A small CNN for 32x32 images: conv, ReLU, max-pool (twice), flatten, linear."""

from __future__ import annotations

import torch
from torch import nn

from models._common import finish, randn


class SmallCNN(nn.Module):
    """Two conv-ReLU-maxpool blocks then a linear classifier over 10 classes."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(16 * 8 * 8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def build() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The module (seeded weights) and a 2x3x32x32 input."""
    torch.manual_seed(0)
    return finish(SmallCNN()), (randn(2, 3, 32, 32, offset=1),)
