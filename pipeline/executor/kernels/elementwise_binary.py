"""Kernels of MIL's elementwise binary ops (coremltools defs: elementwise_binary.py)."""

from __future__ import annotations

import numpy as np

from pipeline.executor.kernels.registry import mil_kernel


@mil_kernel("add")
def add(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.add(x, y)
