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


def calibrate_batch_norms(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
    """Set every BatchNorm's running statistics from one forward pass on ``inputs``.

    With fresh statistics (mean 0, var 1) and Kaiming-initialised convolutions, activations of a
    deep CNN shrink layer after layer (torchvision's mobilenet_v2 ends near 1e-15): parity at an
    absolute tolerance would then prove nothing.  Statistics of the data itself keep every
    normalised activation near unit scale, as trained weights do.  A norm that sees one value
    per channel (a 1x1 map in batch 1) needs a second sample: the inputs plus a random batch.
    """
    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [m.momentum for m in norms]
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one batch sets the statistics exactly
            m.train()
        with torch.no_grad():
            try:
                module(*inputs)
            except ValueError:  # "Expected more than 1 value per channel when training"
                for m in norms:
                    m.reset_running_stats()
                module(*(torch.cat([t, torch.randn_like(t) if t.is_floating_point() else t])
                         for t in inputs))
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
            m.eval()
