"""Kernels of MIL's reduction ops (coremltools defs: reduction.py).

Ops: reduce_argmax, reduce_argmin, reduce_l1_norm, reduce_l2_norm, reduce_log_sum,
reduce_log_sum_exp, reduce_max, reduce_mean, reduce_min, reduce_prod, reduce_sum,
reduce_sum_square.

``axes`` None reduces every axis; negative axes count from the end; ``keep_dims`` keeps reduced
axes with length 1.  Empty reductions give the identity of the operation (sum 0, prod 1,
max -inf / int min, min +inf / int max, mean NaN).

Precision: float reductions accumulate in fp32 and round the result once to ``x``'s dtype (the
accumulation a device does for fp16), int32 ones accumulate in int64 and wrap to int32 once;
float-valued results of int32 inputs (mean, norms, logs) are truncated toward zero.

Opset differences: iOS17 adds ``output_dtype`` ("int32" or "uint16") to reduce_argmax and
reduce_argmin; the kernel takes it from iOS15 on with the iOS15 default (int32).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.errors import ExecutorError
from pipeline.executor.kernels.registry import mil_kernel

log = logging.getLogger(__name__)

Axes = np.ndarray | list[int] | tuple[int, ...] | None


def _axes(axes: Axes, ndim: int) -> tuple[int, ...]:
    """The reduced axes as non-negative ints (all of them for None)."""
    if axes is None:
        return tuple(range(ndim))
    flat = np.asarray(axes, dtype=np.int64).reshape(-1)
    return tuple(int(a) % ndim if ndim else 0 for a in flat)


def _acc(x: np.ndarray) -> np.ndarray:
    """``x`` in its accumulation dtype: fp32 for floats, int64 for integers."""
    if np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float32, copy=False)
    return x.astype(np.int64, copy=False)


def _real(x: np.ndarray) -> np.ndarray:
    """``x`` for float-valued reductions: fp32 for floats, float64 (exact) for integers."""
    dtype = np.float64 if np.issubdtype(x.dtype, np.integer) else np.float32
    return np.asarray(x, dtype=dtype)


def _finish(y: Any, x: np.ndarray) -> np.ndarray:
    """Round a result once to ``x``'s dtype (truncating float results of int inputs)."""
    y = np.asarray(y)
    if np.issubdtype(x.dtype, np.integer) and np.issubdtype(y.dtype, np.floating):
        y = np.nan_to_num(np.trunc(y), nan=0.0, posinf=0.0, neginf=0.0)
    return y.astype(x.dtype, copy=False)


def _reduce(
    fn: Callable[..., np.ndarray], x: np.ndarray, axes: Axes, keep_dims: Any, **kw: Any
) -> np.ndarray:
    """Apply a numpy reduction over MIL ``axes`` with ``keep_dims``; round once."""
    x = np.asarray(x)
    y = fn(_acc(x), axis=_axes(axes, x.ndim), keepdims=bool(keep_dims), **kw)
    return _finish(y, x)


@mil_kernel("reduce_sum")
def reduce_sum(x: np.ndarray, axes: Axes = None, keep_dims: bool = False) -> np.ndarray:
    """y = sum(x) over axes."""
    return _reduce(np.sum, x, axes, keep_dims)


@mil_kernel("reduce_mean")
def reduce_mean(x: np.ndarray, axes: Axes = None, keep_dims: bool = False) -> np.ndarray:
    """y = mean(x) over axes."""
    x = np.asarray(x)
    work = _real(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.mean(work, axis=_axes(axes, x.ndim), keepdims=bool(keep_dims))
    return _finish(y, x)


@mil_kernel("reduce_prod")
def reduce_prod(x: np.ndarray, axes: Axes = None, keep_dims: bool = False) -> np.ndarray:
    """y = prod(x) over axes."""
    return _reduce(np.prod, x, axes, keep_dims)


def _extreme(x: np.ndarray, biggest: bool) -> np.generic:
    """The identity of max (biggest=False gives -inf) or min over ``x``'s accumulation dtype."""
    if np.issubdtype(x.dtype, np.floating):
        return np.float32(-np.inf if not biggest else np.inf)
    info = np.iinfo(x.dtype)
    return np.int64(info.max if biggest else info.min)


@mil_kernel("reduce_max")
def reduce_max(x: np.ndarray, axes: Axes = None, keep_dims: bool = False) -> np.ndarray:
    """y = max(x) over axes."""
    x = np.asarray(x)
    return _reduce(np.max, x, axes, keep_dims, initial=_extreme(x, biggest=False))


@mil_kernel("reduce_min")
def reduce_min(x: np.ndarray, axes: Axes = None, keep_dims: bool = False) -> np.ndarray:
    """y = min(x) over axes."""
    x = np.asarray(x)
    return _reduce(np.min, x, axes, keep_dims, initial=_extreme(x, biggest=True))


@mil_kernel("reduce_l1_norm")
def reduce_l1_norm(x: np.ndarray, axes: Axes = None, keep_dims: bool = False) -> np.ndarray:
    """y = sum(|x|) over axes."""
    x = np.asarray(x)
    return _reduce(np.sum, np.abs(x), axes, keep_dims)


@mil_kernel("reduce_sum_square")
def reduce_sum_square(x: np.ndarray, axes: Axes = None, keep_dims: bool = False) -> np.ndarray:
    """y = sum(x^2) over axes."""
    x = np.asarray(x)
    acc = _acc(x)
    y = np.sum(acc * acc, axis=_axes(axes, x.ndim), keepdims=bool(keep_dims))
    return _finish(y, x)


@mil_kernel("reduce_l2_norm")
def reduce_l2_norm(x: np.ndarray, axes: Axes = None, keep_dims: bool = False) -> np.ndarray:
    """y = sqrt(sum(x^2)) over axes."""
    x = np.asarray(x)
    acc = _real(x)
    y = np.sqrt(np.sum(acc * acc, axis=_axes(axes, x.ndim), keepdims=bool(keep_dims)))
    return _finish(y, x)


@mil_kernel("reduce_log_sum")
def reduce_log_sum(x: np.ndarray, axes: Axes = None, keep_dims: bool = False) -> np.ndarray:
    """y = ln(sum(x)) over axes."""
    x = np.asarray(x)
    acc = _real(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(np.sum(acc, axis=_axes(axes, x.ndim), keepdims=bool(keep_dims)))
    return _finish(y, x)


@mil_kernel("reduce_log_sum_exp")
def reduce_log_sum_exp(x: np.ndarray, axes: Axes = None, keep_dims: bool = False) -> np.ndarray:
    """y = ln(sum(e^x)) over axes, as m + ln(sum(e^(x - m))) with m the max (no overflow)."""
    x = np.asarray(x)
    acc = _real(x)
    ax = _axes(axes, x.ndim)
    m = np.max(acc, axis=ax, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0).astype(acc.dtype)
    with np.errstate(divide="ignore"):
        y = np.log(np.sum(np.exp(acc - m), axis=ax, keepdims=True)) + m
    if not keep_dims:
        y = np.squeeze(y, axis=ax)
    return _finish(y, x)


_ARG_DTYPES: dict[str, np.dtype] = {"int32": np.dtype(np.int32), "uint16": np.dtype(np.uint16)}


def _reduce_arg(
    fn: Callable[..., np.ndarray], x: np.ndarray, axis: Any, keep_dims: Any, output_dtype: str
) -> np.ndarray:
    x = np.asarray(x)
    ax = int(axis)
    dtype = _ARG_DTYPES.get(str(output_dtype).lower())
    if dtype is None:
        raise ExecutorError(
            f"execute: {fn.__name__} output_dtype {output_dtype!r} is not supported; "
            "use 'int32' or 'uint16'"
        )
    if x.shape[ax] == 0:
        raise ExecutorError(f"execute: {fn.__name__} over an empty axis {ax} of shape {x.shape}")
    # numpy returns the first index of ties, the stable choice the MIL doc leaves open.
    idx = fn(x, axis=ax, keepdims=bool(keep_dims))
    return idx.astype(dtype)


@mil_kernel("reduce_argmax")
def reduce_argmax(
    x: np.ndarray, axis: Any = -1, keep_dims: bool = False, output_dtype: str = "int32"
) -> np.ndarray:
    """y = index of the max along ``axis`` (first of ties)."""
    return _reduce_arg(np.argmax, x, axis, keep_dims, output_dtype)


@mil_kernel("reduce_argmin")
def reduce_argmin(
    x: np.ndarray, axis: Any = -1, keep_dims: bool = False, output_dtype: str = "int32"
) -> np.ndarray:
    """y = index of the min along ``axis`` (first of ties)."""
    return _reduce_arg(np.argmin, x, axis, keep_dims, output_dtype)
