"""Kernels of MIL's activation ops (coremltools defs: activation.py).

Ops: clamped_relu, elu, gelu, leaky_relu, linear_activation, prelu, relu, relu6, scaled_tanh,
sigmoid, sigmoid_hard, silu, softplus, softplus_parametric, softmax, softsign, thresholded_relu.

Precision: each op computes in fp32 and rounds its result once to ``x``'s dtype, so an fp16
program loses precision once per op, as on a device; nothing is kept wider between ops.

Opset differences: iOS17 lets ``alpha``/``beta`` have a dtype other than ``x`` (clamped_relu,
elu, leaky_relu, linear_activation, prelu, scaled_tanh, sigmoid_hard, softplus_parametric,
thresholded_relu); the arithmetic is unchanged, so one kernel serves iOS15 on.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.errors import ExecutorError
from pipeline.executor.kernels.registry import mil_kernel

log = logging.getLogger(__name__)


def _f32(a: np.ndarray | float) -> np.ndarray:
    """``a`` as an fp32 array (the working precision of every activation)."""
    return np.asarray(a, dtype=np.float32)


def _done(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Round the fp32 result once to the dtype of ``x``."""
    return np.asarray(y).astype(x.dtype, copy=False)


def _per_channel(param: np.ndarray, x: np.ndarray, op: str) -> np.ndarray:
    """A length-C parameter shaped to broadcast along axis 1 of ``x``."""
    p = _f32(param).reshape(-1)
    if x.ndim < 2 or p.size not in (1, x.shape[1]):
        raise ExecutorError(
            f"execute: {op} needs a per-channel parameter of length x.shape[1]; got {p.size} "
            f"values for x of shape {x.shape}"
        )
    return p.reshape((1, -1) + (1,) * (x.ndim - 2))


def _sigmoid(v: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-v))


@mil_kernel("relu")
def relu(x: np.ndarray) -> np.ndarray:
    """y = max(x, 0)."""
    return np.maximum(x, np.zeros((), x.dtype))


@mil_kernel("relu6")
def relu6(x: np.ndarray) -> np.ndarray:
    """y = min(max(x, 0), 6)."""
    return np.minimum(np.maximum(x, np.zeros((), x.dtype)), np.asarray(6, x.dtype))


@mil_kernel("clamped_relu")
def clamped_relu(x: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """y = min(beta, x) for x >= 0, else min(beta, alpha * x)."""
    v = _f32(x)
    return _done(np.minimum(_f32(beta), np.where(v >= 0, v, _f32(alpha) * v)), x)


@mil_kernel("elu")
def elu(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """y = x for x > 0, else alpha * (e^x - 1)."""
    v = _f32(x)
    return _done(np.where(v > 0, v, _f32(alpha) * np.expm1(np.minimum(v, 0))), x)


@mil_kernel("gelu")
def gelu(x: np.ndarray, mode: str = "EXACT") -> np.ndarray:
    """EXACT: 0.5x(1+erf(x/sqrt2)); TANH_APPROXIMATION: 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3)));
    SIGMOID_APPROXIMATION: x*sigmoid(1.702x)."""
    v = _f32(x)
    if mode in ("EXACT", "TANH_APPROXIMATION"):
        # torch evaluates these two formulas literally (in fp32 here), in one vectorised pass.
        approximate = "none" if mode == "EXACT" else "tanh"
        with torch.no_grad():
            t = F.gelu(torch.from_numpy(np.ascontiguousarray(v)), approximate=approximate)
        y = t.numpy()
    elif mode == "SIGMOID_APPROXIMATION":
        y = v * _sigmoid(np.float32(1.702) * v)
    else:
        raise ExecutorError(
            f"execute: gelu mode {mode!r} is unknown; use EXACT, TANH_APPROXIMATION or "
            "SIGMOID_APPROXIMATION"
        )
    return _done(y, x)


@mil_kernel("leaky_relu")
def leaky_relu(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """y = x for x >= 0, else alpha * x."""
    v = _f32(x)
    return _done(np.where(v >= 0, v, _f32(alpha) * v), x)


@mil_kernel("linear_activation")
def linear_activation(x: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """y = alpha * x + beta."""
    return _done(_f32(alpha) * _f32(x) + _f32(beta), x)


@mil_kernel("prelu")
def prelu(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """y = x for x > 0, else alpha[c] * x, with c the index along axis 1."""
    v = _f32(x)
    return _done(np.where(v > 0, v, _per_channel(alpha, x, "prelu") * v), x)


@mil_kernel("scaled_tanh")
def scaled_tanh(x: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """y = alpha * tanh(beta * x)."""
    return _done(_f32(alpha) * np.tanh(_f32(beta) * _f32(x)), x)


@mil_kernel("sigmoid")
def sigmoid(x: np.ndarray) -> np.ndarray:
    """y = 1 / (1 + e^-x)."""
    return _done(_sigmoid(_f32(x)), x)


@mil_kernel("sigmoid_hard")
def sigmoid_hard(x: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """y = min(max(alpha * x + beta, 0), 1)."""
    return _done(np.clip(_f32(alpha) * _f32(x) + _f32(beta), 0.0, 1.0), x)


@mil_kernel("silu")
def silu(x: np.ndarray) -> np.ndarray:
    """y = x * sigmoid(x)."""
    v = _f32(x)
    return _done(v * _sigmoid(v), x)


@mil_kernel("softplus")
def softplus(x: np.ndarray) -> np.ndarray:
    """y = ln(1 + e^x), evaluated without overflow."""
    return _done(np.logaddexp(np.float32(0), _f32(x)), x)


@mil_kernel("softplus_parametric")
def softplus_parametric(x: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """y = alpha[c] * ln(1 + e^(beta[c] * x)), c the index along axis 1."""
    a = _per_channel(alpha, x, "softplus_parametric")
    b = _per_channel(beta, x, "softplus_parametric")
    return _done(a * np.logaddexp(np.float32(0), b * _f32(x)), x)


@mil_kernel("softmax")
def softmax(x: np.ndarray, axis: np.ndarray | int = -1) -> np.ndarray:
    """y = e^(x - max) / sum(e^(x - max)) along ``axis``."""
    v = _f32(x)
    ax = int(axis)
    if v.size == 0:
        return _done(v, x)
    # torch's softmax subtracts the max along the axis too; one fused, vectorised pass.
    with torch.no_grad():
        y = torch.softmax(torch.from_numpy(np.ascontiguousarray(v)), dim=ax)
    return _done(y.numpy(), x)


@mil_kernel("softsign")
def softsign(x: np.ndarray) -> np.ndarray:
    """y = x / (1 + |x|)."""
    v = _f32(x)
    return _done(v / (1.0 + np.abs(v)), x)


@mil_kernel("thresholded_relu")
def thresholded_relu(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """y = x for x >= alpha, else 0."""
    v = _f32(x)
    return _done(np.where(v >= _f32(alpha), v, np.float32(0)), x)
