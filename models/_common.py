"""Seeding helpers shared by the sample model factories."""

from __future__ import annotations

import torch

SEED = 0


def generator(offset: int = 0) -> torch.Generator:
    """A CPU generator seeded with ``SEED + offset`` for example inputs."""
    return torch.Generator().manual_seed(SEED + offset)


def randn(*shape: int, offset: int = 0) -> torch.Tensor:
    """Standard-normal float32 tensor from a seeded generator."""
    return torch.randn(*shape, generator=generator(offset), dtype=torch.float32)


def finish(module: torch.nn.Module) -> torch.nn.Module:
    """Put a module in eval mode with gradients off (export and parity are inference)."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module
