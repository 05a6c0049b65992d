"""Kernels of MIL's random ops (coremltools defs: iOS15 random.py).

Ops: random_bernoulli, random_categorical, random_normal, random_uniform.
A ``seed`` other than -1 gives the same values on every run (numpy's PCG64 seeded with it; the
values differ from a device's, only the distribution is the same); seed -1 draws fresh entropy.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.executor.kernels.registry import IOS15, mil_kernel

log = logging.getLogger(__name__)


def _rng(seed: Any) -> np.random.Generator:
    s = int(seed)
    return np.random.default_rng(None if s == -1 else s)


def _shape(shape: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in np.asarray(shape).reshape(-1))


@mil_kernel("random_bernoulli", since=IOS15)
def random_bernoulli(shape: Any, prob: Any = 0.5, seed: Any = -1) -> np.ndarray:
    """Each element 1 with probability ``prob``, else 0 (dtype of prob)."""
    p = np.asarray(prob)
    return (_rng(seed).random(_shape(shape)) < float(p)).astype(p.dtype)


@mil_kernel("random_categorical", since=IOS15)
def random_categorical(x: np.ndarray, mode: Any = "logits", size: Any = 1, seed: Any = -1) -> np.ndarray:
    """``size`` class indices per distribution (last axis of x), drawn with replacement."""
    v = x.astype(np.float64)
    if str(mode) == "logits":
        e = np.exp(v - v.max(axis=-1, keepdims=True))
        probs = e / e.sum(axis=-1, keepdims=True)
    else:
        probs = v / v.sum(axis=-1, keepdims=True)
    cdf = np.cumsum(probs, axis=-1)
    u = _rng(seed).random(x.shape[:-1] + (int(size),))
    # inverse CDF: the index is how many cumulative probabilities the uniform draw exceeds
    idx = (u[..., None] >= cdf[..., None, :]).sum(axis=-1)
    return np.minimum(idx, x.shape[-1] - 1).astype(x.dtype)


@mil_kernel("random_normal", since=IOS15)
def random_normal(shape: Any, mean: Any = 0.0, stddev: Any = 1.0, seed: Any = -1) -> np.ndarray:
    """Samples of N(mean, stddev^2) (dtype of mean)."""
    m = np.asarray(mean)
    return _rng(seed).normal(float(m), float(stddev), size=_shape(shape)).astype(m.dtype)


@mil_kernel("random_uniform", since=IOS15)
def random_uniform(shape: Any, low: Any = 0.0, high: Any = 1.0, seed: Any = -1) -> np.ndarray:
    """Samples of U[low, high) (dtype of low)."""
    lo = np.asarray(low)
    draw = float(lo) + (float(high) - float(lo)) * _rng(seed).random(_shape(shape))
    out = draw.astype(lo.dtype)
    # rounding to fp16 can land on ``high``; keep the interval half-open
    if float(high) > float(lo):
        top = np.asarray(high, lo.dtype)
        out = np.minimum(out, np.nextafter(top, lo.astype(lo.dtype)))
    return out
