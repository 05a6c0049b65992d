"""A MobileNetV2-style inverted residual block with ReLU6 and Hardtanh activations.

expand 1x1 conv + BN + ReLU6, depthwise 3x3 conv + BN + ReLU6, project 1x1 conv + BN, residual
add, then Hardtanh(-2, 2).  ReLU6 and Hardtanh are the ops issue 5 carries through our custom
domain (``pipeline.custom::HardTanh``, with ``symbolics=["aten::relu6", "aten::hardtanh"]``).
"""

from __future__ import annotations

import torch
from torch import nn

from models._common import finish, randn


class InvertedResidual(nn.Module):
    """y = hardtanh(x + project(relu6(depthwise(relu6(expand(x))))), -2, 2)."""

    def __init__(self, channels: int = 8, expansion: int = 4) -> None:
        super().__init__()
        hidden = channels * expansion
        self.expand = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6())
        self.depthwise = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()
        )
        self.project = nn.Sequential(nn.Conv2d(hidden, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.clamp = nn.Hardtanh(-2.0, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.clamp(x + self.project(self.depthwise(self.expand(x))))


def build() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The block (seeded weights, non-trivial BN statistics) and a 1x8x16x16 input."""
    torch.manual_seed(0)
    block = InvertedResidual()
    for module in block.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return finish(block), (randn(1, 8, 16, 16, offset=1) * 3.0,)
