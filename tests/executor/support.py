"""Shared helpers of the executor kernel tests: run a program, tolerances per dtype, random data."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.executor import execute

# One tolerance row per dtype: (rtol, atol).  fp16 has an 11-bit significand (eps ~ 9.8e-4):
# a few ulps of relative error plus an absolute floor for values near zero.
TOLERANCES: dict[Any, tuple[float, float]] = {
    np.dtype(np.float32): (1e-5, 1e-6),
    np.dtype(np.float16): (4e-3, 2e-3),
}


def tol(dtype: Any) -> dict[str, float]:
    """``rtol``/``atol`` keywords for ``np.testing.assert_allclose`` at ``dtype``."""
    rtol, atol = TOLERANCES[np.dtype(dtype)]
    return {"rtol": rtol, "atol": atol}


def run(prog: Any, **inputs: np.ndarray) -> list[np.ndarray]:
    """Execute ``prog`` and return its outputs in program order."""
    return list(execute(prog, inputs).values())


def run1(prog: Any, **inputs: np.ndarray) -> np.ndarray:
    """Execute a single-output ``prog`` and return that output."""
    (out,) = run(prog, **inputs)
    return out


def rand(*shape: int, dtype: Any = np.float32, seed: int = 0, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """Seeded uniform values in [low, high) of ``dtype``."""
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(dtype)
