"""Gather and scatter: Gather, GatherElements, GatherND, Scatter, ScatterElements, ScatterND.

Spec changes read: Gather 1, 11 (negative indices), 13 (types); GatherElements 11, 13;
GatherND 11, 12 (batch_dims), 13; Scatter 9 (deprecated from 11); ScatterElements 11, 13,
16 (reduction none/add/mul), 18 (reduction max/min); ScatterND 11, 13, 16 (reduction
none/add/mul), 18 (max/min).

Each op has a one-op MIL twin.  Negative indices are wrapped per ``ops.indexing``: free for
constant indices and before iOS17; at iOS17+ one ``mod`` for run-time indices, except for gather
and gather_nd, which coremltools' own pass guards.  MIL's gather/scatter take no bools: bool data is gathered as
int32 and cast back.  With duplicate indices and no reduction ONNX leaves the result undefined, as
MIL does.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.ops.indexing import (
    bool_as_int,
    normalize_axis,
    static_dim,
    static_shape,
    wrap_indices,
)
from pipeline.lowering.registry import onnx_op

log = logging.getLogger(__name__)

#: ONNX reduction attribute -> MIL scatter mode.
_MODES = {"none": "update", "add": "add", "mul": "mul", "max": "max", "min": "min"}


def _mode(node: Node) -> str:
    reduction = str(node.attr("reduction", "none"))
    if reduction not in _MODES:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: reduction={reduction!r} is not one of {sorted(_MODES)}; fix the model"
        )
    return _MODES[reduction]


def _indices(ctx: LowerContext, var: Any) -> Any:
    return ctx.cast(var, np.int32)


@onnx_op("Gather", since=1)
def gather(ctx: LowerContext, node: Node) -> Any:
    """y = take(x, indices, axis); negative indices count from the end.  MIL: gather."""
    x = node.input(0)
    axis = normalize_axis(node, int(node.attr("axis")), x.rank)
    if _is_flat_read(x, node.input(1)):
        # torch's as_strided on a contiguous tensor exports as Gather(flat, arange(n).reshape(s)):
        # every element read once in order, i.e. a reshape.
        return ctx.mb.reshape(x=x, shape=np.asarray(node.input(1).val.shape, np.int32))
    indices = wrap_indices(ctx, _indices(ctx, node.input(1)), x, [axis], guarded=True)
    return bool_as_int(ctx, x, lambda v: ctx.mb.gather(x=v, indices=indices, axis=axis))


def _is_flat_read(x: Any, indices: Any) -> bool:
    """x is 1-D of static size n and the constant indices hold 0..n-1 in row-major order."""
    idx = indices.val
    size = static_shape(x)
    if idx is None or size is None or len(size) != 1 or np.ndim(idx) == 0:
        return False
    flat = np.asarray(idx).reshape(-1).astype(np.int64)
    return flat.size == size[0] and bool(np.array_equal(np.where(flat < 0, flat + size[0], flat), np.arange(size[0])))


@onnx_op("GatherElements", since=11)
def gather_elements(ctx: LowerContext, node: Node) -> Any:
    """y[i][j] = x[indices[i][j]][j] (axis 0; likewise on any axis).  MIL: gather_along_axis.

    Indices smaller than x on the other axes first cut x to their size (slice_by_size), since MIL
    wants equal sizes there.
    """
    x = node.input(0)
    axis = normalize_axis(node, int(node.attr("axis")), x.rank)
    indices = wrap_indices(ctx, _indices(ctx, node.input(1)), x, [axis])
    x_shape, i_shape = static_shape(x), static_shape(indices)
    if x_shape is not None and i_shape is not None and any(
        a != b for k, (a, b) in enumerate(zip(x_shape, i_shape)) if k != axis
    ):
        size = [-1 if k == axis else d for k, d in enumerate(i_shape)]
        x = ctx.mb.slice_by_size(x=x, begin=np.zeros(x.rank, np.int32), size=np.asarray(size, np.int32))
    return bool_as_int(ctx, x, lambda v: ctx.mb.gather_along_axis(x=v, indices=indices, axis=axis))


@onnx_op("GatherND", since=11)
def gather_nd(ctx: LowerContext, node: Node) -> Any:
    """y[b.., i..] = x[b.., indices[b.., i.., :]] with ``batch_dims`` shared leading dims.  MIL: gather_nd.

    Limits: batch_dims > 0 needs iOS16 (gather_nd's batch_dims); the last dim of indices must be static.
    """
    x, indices = node.input(0), _indices(ctx, node.input(1))
    batch_dims = int(node.attr("batch_dims", 0))
    k = static_dim(indices, indices.rank - 1)
    if k is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: the last dimension of indices must be known at conversion time; "
            "give the model static shapes"
        )
    # coremltools' guard pass adds x.shape[:k] to negative indices, ignoring batch_dims, so with
    # batch_dims the indices are wrapped here (its select then always keeps them).
    indices = wrap_indices(ctx, indices, x, list(range(batch_dims, batch_dims + k)), guarded=batch_dims == 0)
    if batch_dims:
        ctx.require_target(16, "GatherND with batch_dims uses gather_nd's batch_dims (iOS16)")
        return bool_as_int(ctx, x, lambda v: ctx.mb.gather_nd(x=v, indices=indices, batch_dims=batch_dims))
    return bool_as_int(ctx, x, lambda v: ctx.mb.gather_nd(x=v, indices=indices))


def _scatter_bool(ctx: LowerContext, data: Any, updates: Any, build: Any) -> Any:
    """``build(data, updates)`` in int32 when data is bool (MIL scatters take no bools), cast back."""
    if ctx.np_dtype(data) != np.bool_:
        return build(data, updates)
    out = build(ctx.cast(data, np.int32), ctx.cast(updates, np.int32))
    return ctx.cast(out, np.bool_)


def _element_coordinates(ctx: LowerContext, indices: Any, axis: int, shape: tuple[int, ...]) -> Any:
    """Full [.., rank] coordinates of every element of ``indices``, the axis coordinate from indices."""
    grids = np.indices(shape, dtype=np.int32)
    val = ctx.value_of(indices)
    if val is not None:
        grids[axis] = val
        return ctx.const(np.stack(list(grids), axis=-1))
    parts = [ctx.const(grids[k][..., None]) for k in range(len(shape))]
    parts[axis] = ctx.mb.expand_dims(x=indices, axes=[-1])
    return ctx.mb.concat(values=parts, axis=-1)


def _scatter_elements(ctx: LowerContext, node: Node, mode: str) -> Any:
    data, updates = node.input(0), node.input(2)
    axis = normalize_axis(node, int(node.attr("axis")), data.rank)
    indices = wrap_indices(ctx, _indices(ctx, node.input(1)), data, [axis])
    d_shape, i_shape = static_shape(data), static_shape(indices)
    if d_shape is not None and i_shape is not None and any(
        a != b for k, (a, b) in enumerate(zip(d_shape, i_shape)) if k != axis
    ):
        # MIL's scatter_along_axis wants indices as large as data off the axis; scatter_nd does not.
        coords = _element_coordinates(ctx, indices, axis, i_shape)
        return _scatter_bool(ctx, data, updates, lambda d, u: ctx.mb.scatter_nd(data=d, indices=coords, updates=u, mode=mode))
    return _scatter_bool(
        ctx, data, updates,
        lambda d, u: ctx.mb.scatter_along_axis(data=d, indices=indices, updates=u, axis=axis, mode=mode),
    )


@onnx_op("Scatter", since=9)
def scatter(ctx: LowerContext, node: Node) -> Any:
    """Deprecated ScatterElements without reduction: y = x; y[idx[i][j]][j] = updates[i][j].  MIL: scatter_along_axis."""
    return _scatter_elements(ctx, node, "update")


@onnx_op("ScatterElements", since=11)
def scatter_elements(ctx: LowerContext, node: Node) -> Any:
    """y = x; y[idx[i][j]][j] (reduction)= updates[i][j] (axis 0; likewise on any axis).

    MIL: scatter_along_axis (mode update/add/mul/max/min); scatter_nd with element coordinates when
    indices are smaller than data off the axis.
    """
    return _scatter_elements(ctx, node, _mode(node))


@onnx_op("ScatterND", since=11)
def scatter_nd(ctx: LowerContext, node: Node) -> Any:
    """y = x; y[indices[i.., :]] (reduction)= updates[i..].  MIL: scatter_nd (mode update/add/mul/max/min).

    Limits: the last dim of indices must be static.
    """
    data, indices, updates = node.input(0), _indices(ctx, node.input(1)), node.input(2)
    k = static_dim(indices, indices.rank - 1)
    if k is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: the last dimension of indices must be known at conversion time; "
            "give the model static shapes"
        )
    indices = wrap_indices(ctx, indices, data, list(range(k)))
    mode = _mode(node)
    return _scatter_bool(ctx, data, updates, lambda d, u: ctx.mb.scatter_nd(data=d, indices=indices, updates=u, mode=mode))
