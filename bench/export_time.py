"""Export wall time of torchvision resnet18 (1x3x224x224) and models.transformer_block with each
exporter: median of a few runs of the export step alone (no rewrites, simplify or parity).

Run: ``.venv/bin/python bench/export_time.py [--runs 3]``; prints a table.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import models
from pipeline.errors import PipelineError
from pipeline.exporting import exporters


def _resnet18() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    import torchvision

    torch.manual_seed(0)
    module = torchvision.models.resnet18(weights=None).eval()
    return module, (torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)),)


CASES: dict[str, Callable[[], tuple[torch.nn.Module, tuple[torch.Tensor, ...]]]] = {
    "resnet18": _resnet18,
    "transformer_block": models.entry("transformer_block").build,
}


def time_one(name: str, exporter: str, runs: int) -> str:
    """Median seconds of ``runs`` exports (after one warm-up), or why it failed."""
    module, args = CASES[name]()
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        try:
            exporters.export_model(module, args, exporter=exporter, input_names=["x"], fallback=False)
        except PipelineError as exc:
            return f"fails ({str(exc)[:70]}...)"
        if i:  # the first run warms up imports and caches
            times.append(time.perf_counter() - start)
    return f"{statistics.median(times):.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    rows = [(n, e, time_one(n, e, args.runs)) for n in CASES for e in exporters.EXPORTERS]
    print(f"torch {torch.__version__}, median of {args.runs} runs after a warm-up")
    print(f"{'model':20s} {'exporter':12s} export time")
    for name, exporter, text in rows:
        print(f"{name:20s} {exporter:12s} {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
