"""A small face-segmentation style encoder-decoder: ReLU6, Hardtanh, nearest and bilinear
upsampling, a skip connection by concatenation, and a sigmoid mask head."""

from __future__ import annotations

import torch
from torch import nn

from models._common import finish, randn


def _block(cin: int, cout: int, stride: int, act: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), act)


class FaceSeg(nn.Module):
    """64x64 RGB -> 1x64x64 mask probabilities."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1 = _block(3, 16, 2, nn.ReLU6())                  # 32x32
        self.enc2 = _block(16, 32, 2, nn.Hardtanh(-2.0, 2.0))      # 16x16
        self.bottleneck = _block(32, 32, 1, nn.ReLU6())
        self.up1 = nn.Upsample(scale_factor=2, mode="nearest")    # 32x32
        self.dec1 = _block(32 + 16, 16, 1, nn.Hardtanh())
        self.up2 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)  # 64x64
        self.head = nn.Conv2d(16, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.enc1(x)
        y = self.bottleneck(self.enc2(s1))
        y = self.dec1(torch.cat([self.up1(y), s1], dim=1))
        return torch.sigmoid(self.head(self.up2(y)))


def build() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The module (seeded weights, non-trivial BatchNorm statistics) and a 1x3x64x64 input."""
    torch.manual_seed(0)
    model = FaceSeg()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            # Random running statistics so that BatchNorm is not an identity in eval mode.
            assert m.running_mean is not None and m.running_var is not None  # track_running_stats
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return finish(model), (randn(1, 3, 64, 64, offset=1),)
