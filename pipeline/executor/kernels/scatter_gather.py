"""Kernels of MIL's gather and scatter ops (coremltools defs: scatter_gather.py).

Ops: gather (iOS15; iOS16 ``batch_dims``; iOS17 ``validate_indices``), gather_along_axis,
gather_nd (iOS16 ``batch_dims``), scatter, scatter_along_axis, scatter_nd (iOS17
``validate_indices``); scatter modes update/add/sub/mul/div/max/min.

Index rules: up to iOS16 an index may be negative (``-D <= i < D``, counted from the end).  From
iOS17 negative indices are out of bounds and out-of-bound behaviour is undefined on device, so
the executor raises on any out-of-bound index there rather than guess (whatever
``validate_indices`` says).  Scatter with repeated indices in ``update`` mode keeps the last
write (device order is unspecified); the reducing modes accumulate every duplicate.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import ExecutorError
from pipeline.executor.kernels.registry import IOS16, IOS17, mil_kernel

log = logging.getLogger(__name__)


def _checked(
    op: str, indices: np.ndarray, dim: int | np.ndarray, *, negative_ok: bool
) -> np.ndarray:
    """Indices as int64 with negatives wrapped (when allowed); raise on out-of-bound values."""
    idx = np.asarray(indices).astype(np.int64)
    low = -np.asarray(dim) if negative_ok else 0
    if idx.size and (np.any(idx < low) or np.any(idx >= np.asarray(dim))):
        rule = "[-D, D)" if negative_ok else "[0, D) (iOS17+ treats negatives as out of bounds)"
        raise ExecutorError(
            f"execute: {op} has indices outside {rule} for dimension size {dim}; "
            f"device behaviour is undefined, fix the indices"
        )
    return np.where(idx < 0, idx + np.asarray(dim), idx)


# -- gather -------------------------------------------------------------------------------


def _gather(x: np.ndarray, indices: np.ndarray, axis: int, batch_dims: int) -> np.ndarray:
    """out[b.., p.., i.., q..] = x[b.., p.., indices[b.., i..], q..] (b = batch dims)."""
    axis %= x.ndim
    if batch_dims == 0:
        return np.take(x, indices, axis=axis)
    bshape = x.shape[:batch_dims]
    nb = int(np.prod(bshape, dtype=np.int64))
    xb = x.reshape(nb, *x.shape[batch_dims:])
    ib = indices.reshape(nb, -1)
    pre = axis - batch_dims  # dims of x between the batch dims and axis
    xt = np.moveaxis(xb, 1 + pre, 1)  # [B, D, pre.., post..]
    r = xt[np.arange(nb)[:, None], ib]  # [B, K, pre.., post..]
    idx_rest = indices.shape[batch_dims:]
    r = r.reshape(nb, *idx_rest, *r.shape[2:])
    k = len(idx_rest)
    order = [0, *range(1 + k, 1 + k + pre), *range(1, 1 + k), *range(1 + k + pre, r.ndim)]
    r = r.transpose(order)
    return r.reshape(*bshape, *r.shape[1:])


@mil_kernel("gather")
def gather(x: np.ndarray, indices: np.ndarray, axis: Any = 0) -> np.ndarray:
    """out = take(x, indices, axis); negative indices count from the end."""
    ax = int(axis) % x.ndim
    return _gather(x, _checked("gather", indices, x.shape[ax], negative_ok=True), ax, 0)


@mil_kernel("gather", since=IOS16)
def gather_v16(
    x: np.ndarray, indices: np.ndarray, axis: Any = 0, batch_dims: Any = 0
) -> np.ndarray:
    """gather with the leading ``batch_dims`` dims of x and indices shared."""
    ax = int(axis) % x.ndim
    idx = _checked("gather", indices, x.shape[ax], negative_ok=True)
    bd = int(batch_dims)
    return _gather(x, idx, ax, bd + idx.ndim if bd < 0 else bd)


@mil_kernel("gather", since=IOS17)
def gather_v17(
    x: np.ndarray,
    indices: np.ndarray,
    axis: Any = 0,
    batch_dims: Any = 0,
    validate_indices: Any = False,
) -> np.ndarray:
    """gather with batch_dims; indices must lie in [0, D)."""
    ax = int(axis) % x.ndim
    idx = _checked("gather", indices, x.shape[ax], negative_ok=False)
    bd = int(batch_dims)
    return _gather(x, idx, ax, bd + idx.ndim if bd < 0 else bd)


def _gather_along_axis(
    x: np.ndarray, indices: np.ndarray, axis: Any, negative_ok: bool
) -> np.ndarray:
    ax = int(axis) % x.ndim
    idx = _checked("gather_along_axis", indices, x.shape[ax], negative_ok=negative_ok)
    return np.take_along_axis(x, idx, axis=ax)


@mil_kernel("gather_along_axis")
def gather_along_axis(x: np.ndarray, indices: np.ndarray, axis: Any = 0) -> np.ndarray:
    """out[.., i, ..] = x[.., indices[.., i, ..], ..] along axis (numpy take_along_axis)."""
    return _gather_along_axis(x, indices, axis, True)


@mil_kernel("gather_along_axis", since=IOS17)
def gather_along_axis_v17(
    x: np.ndarray, indices: np.ndarray, axis: Any = 0, validate_indices: Any = False
) -> np.ndarray:
    """gather_along_axis with indices in [0, D)."""
    return _gather_along_axis(x, indices, axis, False)


def _gather_nd(
    x: np.ndarray, indices: np.ndarray, batch_dims: int, negative_ok: bool
) -> np.ndarray:
    """out[b.., i..] = x[b.., indices[b.., i.., :]] (slices of the remaining dims)."""
    k = indices.shape[-1]
    bshape = x.shape[:batch_dims]
    dims = np.asarray(x.shape[batch_dims : batch_dims + k])
    idx = _checked("gather_nd", indices, dims, negative_ok=negative_ok)
    nb = int(np.prod(bshape, dtype=np.int64))
    xb = x.reshape(nb, *x.shape[batch_dims:])
    ib = idx.reshape(nb, -1, k)
    r = xb[(np.arange(nb)[:, None], *np.moveaxis(ib, -1, 0))]  # [B, M, rest..]
    return r.reshape(*bshape, *indices.shape[batch_dims:-1], *x.shape[batch_dims + k :])


@mil_kernel("gather_nd")
def gather_nd(x: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """out[i..] = x[indices[i.., 0], ..., indices[i.., K-1]] (K = indices.shape[-1])."""
    return _gather_nd(x, indices, 0, True)


@mil_kernel("gather_nd", since=IOS16)
def gather_nd_v16(x: np.ndarray, indices: np.ndarray, batch_dims: Any = 0) -> np.ndarray:
    """gather_nd with the leading ``batch_dims`` dims shared."""
    return _gather_nd(x, indices, int(batch_dims), True)


@mil_kernel("gather_nd", since=IOS17)
def gather_nd_v17(
    x: np.ndarray, indices: np.ndarray, batch_dims: Any = 0, validate_indices: Any = False
) -> np.ndarray:
    """gather_nd with batch_dims; indices in [0, D)."""
    return _gather_nd(x, indices, int(batch_dims), False)


# -- scatter ------------------------------------------------------------------------------


def _combine(mode: str, dtype: np.dtype) -> Any:
    """The numpy ufunc whose ``.at`` applies scatter ``mode``; None for plain assignment."""
    if mode == "update":
        return None
    table: dict[str, Any] = {
        "add": np.add,
        "sub": np.subtract,
        "mul": np.multiply,
        "div": np.divide if np.issubdtype(dtype, np.floating) else np.floor_divide,
        "max": np.maximum,
        "min": np.minimum,
    }
    if mode not in table:
        raise ExecutorError(
            f"execute: scatter mode {mode!r} is not one of update/add/sub/mul/div/max/min"
        )
    return table[mode]


def _scatter_at(out: np.ndarray, index: Any, updates: np.ndarray, mode: str) -> np.ndarray:
    ufunc = _combine(str(mode), out.dtype)
    if ufunc is None:
        out[index] = updates
    else:
        ufunc.at(out, index, updates.astype(out.dtype, copy=False))
    return out


def _scatter(
    data: np.ndarray,
    indices: np.ndarray,
    updates: np.ndarray,
    axis: Any,
    mode: Any,
    negative_ok: bool,
) -> np.ndarray:
    """out = data; out[.., indices[i], ..] (op)= updates[.., i, ..] along axis."""
    ax = int(axis) % data.ndim
    idx = _checked("scatter", indices, data.shape[ax], negative_ok=negative_ok).reshape(-1)
    out = np.array(data, copy=True)
    front = np.moveaxis(out, ax, 0)  # a view: writes land in ``out``
    _scatter_at(front, idx, np.moveaxis(np.asarray(updates), ax, 0), str(mode))
    return out


@mil_kernel("scatter")
def scatter(
    data: np.ndarray, indices: np.ndarray, updates: np.ndarray, axis: Any = 0, mode: Any = "add"
) -> np.ndarray:
    """Scatter slices along axis at 1-D ``indices`` with ``mode``; negative indices wrap."""
    return _scatter(data, indices, updates, axis, mode, True)


@mil_kernel("scatter", since=IOS17)
def scatter_v17(
    data: np.ndarray,
    indices: np.ndarray,
    updates: np.ndarray,
    axis: Any = 0,
    mode: Any = "add",
    validate_indices: Any = False,
) -> np.ndarray:
    """scatter with indices in [0, D)."""
    return _scatter(data, indices, updates, axis, mode, False)


def _scatter_along_axis(
    data: np.ndarray,
    indices: np.ndarray,
    updates: np.ndarray,
    axis: Any,
    mode: Any,
    negative_ok: bool,
) -> np.ndarray:
    """out[.., indices[.., i, ..], ..] (op)= updates[.., i, ..] element by element."""
    ax = int(axis) % data.ndim
    idx = _checked("scatter_along_axis", indices, data.shape[ax], negative_ok=negative_ok)
    grid = list(np.ogrid[tuple(slice(n) for n in idx.shape)])
    grid[ax] = idx
    return _scatter_at(np.array(data, copy=True), tuple(grid), np.asarray(updates), str(mode))


@mil_kernel("scatter_along_axis")
def scatter_along_axis(
    data: np.ndarray, indices: np.ndarray, updates: np.ndarray, axis: Any = 0, mode: Any = "add"
) -> np.ndarray:
    """Elementwise scatter along axis (inverse of gather_along_axis)."""
    return _scatter_along_axis(data, indices, updates, axis, mode, True)


@mil_kernel("scatter_along_axis", since=IOS17)
def scatter_along_axis_v17(
    data: np.ndarray,
    indices: np.ndarray,
    updates: np.ndarray,
    axis: Any = 0,
    mode: Any = "add",
    validate_indices: Any = False,
) -> np.ndarray:
    """scatter_along_axis with indices in [0, D)."""
    return _scatter_along_axis(data, indices, updates, axis, mode, False)


def _scatter_nd(
    data: np.ndarray, indices: np.ndarray, updates: np.ndarray, mode: Any, negative_ok: bool
) -> np.ndarray:
    """out[indices[i.., :]] (op)= updates[i..] (slices of the trailing dims)."""
    k = indices.shape[-1]
    idx = _checked("scatter_nd", indices, np.asarray(data.shape[:k]), negative_ok=negative_ok)
    index = tuple(np.moveaxis(idx, -1, 0))
    return _scatter_at(np.array(data, copy=True), index, np.asarray(updates), str(mode))


@mil_kernel("scatter_nd")
def scatter_nd(
    data: np.ndarray, indices: np.ndarray, updates: np.ndarray, mode: Any = "add"
) -> np.ndarray:
    """N-d scatter at index tuples in the last dim of ``indices``."""
    return _scatter_nd(data, indices, updates, mode, True)


@mil_kernel("scatter_nd", since=IOS17)
def scatter_nd_v17(
    data: np.ndarray,
    indices: np.ndarray,
    updates: np.ndarray,
    mode: Any = "add",
    validate_indices: Any = False,
) -> np.ndarray:
    """scatter_nd with indices in [0, D)."""
    return _scatter_nd(data, indices, updates, mode, False)
