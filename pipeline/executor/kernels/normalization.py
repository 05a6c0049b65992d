"""Kernels of MIL's normalization ops (coremltools defs: normalization.py).

Ops: batch_norm, instance_norm, l2_norm, layer_norm, local_response_norm.

Precision: statistics and the normalisation are computed in fp32 and the result is rounded once
to ``x``'s dtype; variances are biased (divide by the element count), as the MIL formulas state.

Opset differences: iOS17 lets the parameters (mean, variance, gamma, beta, epsilon, alpha, k)
have a dtype other than ``x``; they are read as fp32 either way, so one kernel serves iOS15 on.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import ExecutorError
from pipeline.executor.kernels.registry import mil_kernel

log = logging.getLogger(__name__)


def _f32(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _channel(param: Any, x: np.ndarray, name: str, op: str) -> np.ndarray:
    """A [C] parameter shaped to broadcast along axis 1 of ``x``."""
    p = _f32(param).reshape(-1)
    if x.ndim < 2 or p.size != x.shape[1]:
        raise ExecutorError(
            f"execute: {op} {name} has {p.size} values but x of shape {x.shape} has "
            f"{x.shape[1] if x.ndim > 1 else '?'} channels (axis 1)"
        )
    return p.reshape((1, -1) + (1,) * (x.ndim - 2))


@mil_kernel("batch_norm")
def batch_norm(
    x: np.ndarray,
    mean: np.ndarray,
    variance: np.ndarray,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    epsilon: Any = 1e-5,
) -> np.ndarray:
    """y = gamma[c] * (x - mean[c]) / sqrt(variance[c] + epsilon) + beta[c]."""
    v = _f32(x)
    m = _channel(mean, x, "mean", "batch_norm")
    var = _channel(variance, x, "variance", "batch_norm")
    scale = 1.0 / np.sqrt(var + _f32(epsilon))
    if gamma is not None:
        scale = scale * _channel(gamma, x, "gamma", "batch_norm")
    y = (v - m) * scale
    if beta is not None:
        y = y + _channel(beta, x, "beta", "batch_norm")
    return y.astype(x.dtype, copy=False)


def _normalize(v: np.ndarray, axes: tuple[int, ...], epsilon: Any) -> np.ndarray:
    """(v - mean) / sqrt(biased var + epsilon) over ``axes`` (fp32)."""
    mean = np.mean(v, axis=axes, keepdims=True)
    centered = v - mean
    var = np.mean(centered * centered, axis=axes, keepdims=True)
    return centered / np.sqrt(var + _f32(epsilon))


@mil_kernel("instance_norm")
def instance_norm(
    x: np.ndarray,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    epsilon: Any = 1e-5,
) -> np.ndarray:
    """y = gamma[c] * (x - mean_nc) / sqrt(var_nc + epsilon) + beta[c], stats over spatial axes."""
    v = _f32(x)
    if v.ndim < 3:
        raise ExecutorError(f"execute: instance_norm needs x of rank >= 3, got shape {v.shape}")
    if v.size == 0:
        return v.astype(x.dtype)
    y = _normalize(v, tuple(range(2, v.ndim)), epsilon)
    if gamma is not None:
        y = y * _channel(gamma, x, "gamma", "instance_norm")
    if beta is not None:
        y = y + _channel(beta, x, "beta", "instance_norm")
    return y.astype(x.dtype, copy=False)


@mil_kernel("l2_norm")
def l2_norm(x: np.ndarray, epsilon: Any = 1e-6) -> np.ndarray:
    """y = x / sqrt(sum(x^2) + epsilon), the sum over the last three axes (leading axes batch)."""
    v = _f32(x)
    if v.ndim < 3:
        raise ExecutorError(f"execute: l2_norm needs x of rank >= 3, got shape {v.shape}")
    sq = np.sum(v * v, axis=(-3, -2, -1), keepdims=True)
    return (v / np.sqrt(sq + _f32(epsilon))).astype(x.dtype, copy=False)


@mil_kernel("layer_norm")
def layer_norm(
    x: np.ndarray,
    axes: Any = None,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    epsilon: Any = 1e-5,
) -> np.ndarray:
    """y = gamma * (x - E[x]) / sqrt(Var[x] + epsilon) + beta, statistics over ``axes``."""
    v = _f32(x)
    if axes is None:
        ax = tuple(range(v.ndim))
    else:
        ax = tuple(sorted(int(a) % v.ndim for a in np.asarray(axes).reshape(-1)))
    if v.size == 0:
        return v.astype(x.dtype)
    y = _normalize(v, ax, epsilon)
    # gamma/beta have shape x.shape[axes]; place them on those axes, 1 elsewhere.
    param_shape = [v.shape[i] if i in ax else 1 for i in range(v.ndim)]
    if gamma is not None:
        y = y * _f32(gamma).reshape(param_shape)
    if beta is not None:
        y = y + _f32(beta).reshape(param_shape)
    return y.astype(x.dtype, copy=False)


@mil_kernel("local_response_norm")
def local_response_norm(
    x: np.ndarray,
    size: Any,
    alpha: Any = 1e-4,
    beta: Any = 0.75,
    k: Any = 1.0,
) -> np.ndarray:
    """y = x / (k + alpha/size * sum_{window over channels} x^2) ^ beta.

    The window of channel c is [c - floor((size-1)/2), c + ceil((size-1)/2)], zero padded (the
    ONNX/Caffe convention; for odd ``size`` it is the centred window every framework uses).
    """
    v = _f32(x)
    n = int(size)
    if v.ndim < 3 or n < 1:
        raise ExecutorError(
            f"execute: local_response_norm needs x of rank >= 3 and size >= 1, got {v.shape}, {n}"
        )
    before, after = (n - 1) // 2, n - 1 - (n - 1) // 2
    sq = v * v
    pad = [(0, 0)] * v.ndim
    pad[1] = (before, after)
    padded = np.pad(sq, pad)
    # Window sums along axis 1 from a cumulative sum: S[c] = cs[c + n] - cs[c].
    cs = np.cumsum(padded, axis=1, dtype=np.float64)
    cs = np.concatenate([np.zeros_like(cs[:, :1]), cs], axis=1)
    channels = v.shape[1]
    window = (cs[:, n : n + channels] - cs[:, :channels]).astype(np.float32)
    denom = np.power(_f32(k) + _f32(alpha) / np.float32(n) * window, _f32(beta))
    return (v / denom).astype(x.dtype, copy=False)
