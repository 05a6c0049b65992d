"""Shape ops: Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, Expand, Tile.

These ops mostly feed shape arithmetic, so every handler folds to a constant (numpy at conversion
time) when the values it needs are known, and emits MIL only for what is really dynamic.  The
helpers :func:`static_shape` and :func:`fold` are shared with the other layout families.

Spec changes read: Shape 1, 13, 15 (start/end), 19, 21, 23-25 (types only); Size 1, 13, 19, 21+;
Reshape 5 (shape input), 13, 14 (allowzero), 19, 21+; Flatten 1, 9, 11 (negative axis), 13,
21+; Squeeze/Unsqueeze 1, 11 (negative axes), 13 (axes move to an input), 21+; Expand 8, 13;
Tile 6 (repeats input), 13.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from coremltools.converters.mil.mil.types.symbolic import any_symbolic, is_symbolic

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.registry import composite_op, onnx_op

log = logging.getLogger(__name__)


# -- shared helpers --------------------------------------------------------------------------
def static_shape(var: Any) -> tuple[int, ...] | None:
    """``var``'s shape as ints, or None when a dimension is symbolic (flexible)."""
    shape = tuple(var.shape)
    if any_symbolic(shape):
        return None
    return tuple(int(d) for d in shape)


def fold(ctx: LowerContext, node: Node, fn: Callable[..., np.ndarray], *indices: int) -> Any | None:
    """``ctx.const(fn(*values))`` when the inputs at ``indices`` are all constants, else None."""
    values = [ctx.value_of(node.input(i)) for i in indices]
    if any(v is None for v in values):
        return None
    return ctx.const(np.asarray(fn(*values)))


def norm_axis(node: Node, axis: int, rank: int) -> int:
    """``axis`` in [0, rank), raising UnsupportedOpError when out of range."""
    if not -rank <= axis < rank:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: axis {axis} is out of range for rank {rank}; fix the model"
        )
    return axis % rank


def const_ints(ctx: LowerContext, node: Node, i: int, what: str) -> list[int] | None:
    """Input ``i`` as a list of ints (None when omitted); raises when it is not a constant."""
    if not node.has_input(i):
        return None
    val = ctx.value_of(node.input(i))
    if val is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: input {i} ({what}) is computed at run time; Core ML needs "
            "it constant. Fix the input shapes (--input-shape) so that it folds"
        )
    return [int(v) for v in np.asarray(val).reshape(-1)]


def _empty_check(node: Node, shape: Sequence[int]) -> None:
    if any(d == 0 for d in shape):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: produces an empty tensor (shape {list(shape)}); Core ML "
            "has no zero-sized tensors. Remove the empty branch from the model"
        )


# -- Shape, Size -----------------------------------------------------------------------------
@onnx_op("Shape", since=1)
def shape(ctx: LowerContext, node: Node) -> Any:
    """y = shape(x)[start:end] as int64 (int32 in Core ML).  MIL: const when static, else shape (+ slice_by_index).

    Limits: none; start/end (opset 15) clamp like Python slices.
    """
    x = node.input(0)
    start, end = int(node.attrs.get("start", 0)), node.attrs.get("end")
    dims = static_shape(x)
    if dims is not None:
        return ctx.const(np.asarray(dims[start:end], np.int32))
    full = ctx.mb.shape(x=x)
    rank = x.rank
    lo, hi, _ = slice(start, end).indices(rank)
    if (lo, hi) == (0, rank):
        return full
    return ctx.mb.slice_by_index(x=full, begin=[lo], end=[max(hi, lo)])


@onnx_op("Size", since=1)
def size(ctx: LowerContext, node: Node) -> Any:
    """y = prod(shape(x)) as an int64 scalar.  MIL: const when static, else shape, reduce_prod."""
    x = node.input(0)
    dims = static_shape(x)
    if dims is not None:
        return ctx.const(np.asarray(int(np.prod(dims)), np.int32))
    return ctx.mb.reduce_prod(x=ctx.mb.shape(x=x), axes=[0], keep_dims=False)


# -- Reshape, Flatten ------------------------------------------------------------------------
def _resolve_reshape(node: Node, in_shape: Sequence[Any], target: Sequence[int], allowzero: bool) -> list[Any]:
    """ONNX's target shape with 0 (copy) resolved to x's dims and -1 inferred when possible."""
    out: list[Any] = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= len(in_shape):
                raise UnsupportedOpError(f"lower: {node.describe()}: shape entry {i} is 0 past x's rank {len(in_shape)}")
            out.append(in_shape[i])
        else:
            out.append(int(d))
    if allowzero and 0 in out:
        _empty_check(node, out)
    if -1 in out and not any(is_symbolic(d) for d in list(in_shape) + out):
        known = int(np.prod([d for d in out if d != -1]))
        out[out.index(-1)] = int(np.prod(in_shape)) // known if known else 0
    return out


def _runtime_zero_copy(ctx: LowerContext, node: Node, x: Any, target: Any) -> Any:
    """select(s == 0, shape(x)[:K], s) for a run-time ONNX shape s of static length K.

    MIL's own 0 copies dims counting from the right (iOS17+), ONNX's from the left, so the copy
    is made explicit; entries past x's rank compare against 1 (such a 0 is invalid ONNX anyway).
    """
    k = target.shape[0] if target.rank == 1 else None
    if k is None or is_symbolic(k):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: the shape input has a run-time length; Core ML needs its "
            "length fixed. Fix the shape tensor's length or make it a constant"
        )
    k, rank = int(k), x.rank
    dims = static_shape(x)
    target = ctx.cast(target, np.int32) if ctx.np_dtype(target) != np.int32 else target
    if dims is not None:
        padded = (list(dims) + [1] * k)[:k]
        src: Any = np.asarray(padded, np.int32)
    else:
        shp = ctx.mb.shape(x=x)
        if k <= rank:
            src = shp if k == rank else ctx.mb.slice_by_index(x=shp, begin=[0], end=[k])
        else:
            src = ctx.mb.concat(values=[shp, np.ones(k - rank, np.int32)], axis=0)
    is_zero = ctx.mb.equal(x=target, y=np.int32(0))
    return ctx.mb.select(cond=is_zero, a=src, b=target)


@onnx_op("Reshape", since=5)
def reshape(ctx: LowerContext, node: Node) -> Any:
    """y = x viewed with shape s (0 copies x's dim unless allowzero, -1 inferred).  MIL: reshape.

    A constant target shape is resolved here, so MIL never sees ONNX's 0 (whose MIL meaning
    changed at iOS17); a run-time shape gets its 0 entries replaced in the program by x's dims
    (select(s == 0, shape(x), s)).  Limits: allowzero=1 with a 0 entry (an empty tensor) is
    unsupported (Core ML has no empty tensors).
    """
    x, target = node.input(0), node.input(1)
    allowzero = bool(node.attrs.get("allowzero", 0))
    tval = ctx.value_of(target)
    if tval is None:
        if allowzero:
            # A 0 is legal only when x is empty, which Core ML cannot hold: pass the shape as is.
            return ctx.mb.reshape(x=x, shape=target)
        return ctx.mb.reshape(x=x, shape=_runtime_zero_copy(ctx, node, x, target))
    resolved = _resolve_reshape(node, list(x.shape), [int(v) for v in tval.reshape(-1)], allowzero)
    xval = ctx.value_of(x)
    if xval is not None:
        return ctx.const(xval.reshape(resolved))
    if tuple(resolved) == tuple(x.shape):
        return x
    if not any(is_symbolic(d) for d in resolved):
        return ctx.mb.reshape(x=x, shape=np.asarray(resolved, np.int32))
    # Symbolic dims copied from x: take them from shape(x) at run time.
    pieces = []
    shp = ctx.mb.shape(x=x)
    for i, d in enumerate(resolved):
        if is_symbolic(d):
            src = list(x.shape).index(d)
            pieces.append(ctx.mb.slice_by_index(x=shp, begin=[src], end=[src + 1]))
        else:
            pieces.append(np.asarray([d], np.int32))
    return ctx.mb.reshape(x=x, shape=ctx.mb.concat(values=pieces, axis=0))


@onnx_op("Flatten", since=1)
def flatten(ctx: LowerContext, node: Node) -> Any:
    """y = x reshaped to (prod(shape[:axis]), prod(shape[axis:])).  MIL: reshape (static) or flatten2d.

    Axis may be negative from opset 11; axis == rank gives (N, 1).
    """
    x = node.input(0)
    rank = x.rank
    axis = int(node.attrs.get("axis", 1))
    if not -rank <= axis <= rank:
        raise UnsupportedOpError(f"lower: {node.describe()}: axis {axis} is out of range for rank {rank}")
    axis = axis + rank if axis < 0 else axis
    dims = static_shape(x)
    if dims is not None:
        out = (int(np.prod(dims[:axis])), int(np.prod(dims[axis:])))
        xval = ctx.value_of(x)
        if xval is not None:
            return ctx.const(xval.reshape(out))
        return x if out == dims else ctx.mb.reshape(x=x, shape=np.asarray(out, np.int32))
    return ctx.mb.flatten2d(x=x, axis=axis)


# -- Squeeze, Unsqueeze ----------------------------------------------------------------------
def _squeeze(ctx: LowerContext, node: Node, axes: list[int] | None) -> Any:
    x = node.input(0)
    rank = x.rank
    if axes is None:
        if any_symbolic(x.shape):
            raise UnsupportedOpError(
                f"lower: {node.describe()}: squeeze without axes on an input with flexible dims; "
                "give the axes explicitly or fix the input shapes"
            )
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    axes = sorted(norm_axis(node, a, rank) for a in axes)
    if not axes:
        return x
    xval = ctx.value_of(x)
    if xval is not None:
        return ctx.const(np.squeeze(xval, axis=tuple(axes)))
    return ctx.mb.squeeze(x=x, axes=np.asarray(axes, np.int32))


@onnx_op("Squeeze", since=1)
def squeeze(ctx: LowerContext, node: Node) -> Any:
    """y = x without the size-1 dims in axes (all size-1 dims by default).  MIL: squeeze."""
    axes = node.attrs.get("axes")
    return _squeeze(ctx, node, None if axes is None else [int(a) for a in axes])


@onnx_op("Squeeze", since=13)
def squeeze_v13(ctx: LowerContext, node: Node) -> Any:
    """y = x without the size-1 dims in axes (an input from opset 13).  MIL: squeeze."""
    return _squeeze(ctx, node, const_ints(ctx, node, 1, "axes"))


def _unsqueeze(ctx: LowerContext, node: Node, axes: list[int]) -> Any:
    x = node.input(0)
    out_rank = x.rank + len(axes)
    norm = sorted(norm_axis(node, a, out_rank) for a in axes)
    xval = ctx.value_of(x)
    if xval is not None:
        return ctx.const(np.expand_dims(xval, axis=tuple(norm)))
    return ctx.mb.expand_dims(x=x, axes=np.asarray(norm, np.int32))


@onnx_op("Unsqueeze", since=1)
def unsqueeze(ctx: LowerContext, node: Node) -> Any:
    """y = x with size-1 dims inserted at axes (of the output).  MIL: expand_dims."""
    return _unsqueeze(ctx, node, [int(a) for a in node.attrs.get("axes", [])])


@onnx_op("Unsqueeze", since=13)
def unsqueeze_v13(ctx: LowerContext, node: Node) -> Any:
    """y = x with size-1 dims inserted at axes (an input from opset 13).  MIL: expand_dims."""
    return _unsqueeze(ctx, node, const_ints(ctx, node, 1, "axes") or [])


# -- Expand, Tile ----------------------------------------------------------------------------
def broadcast_to(ctx: LowerContext, x: Any, out_shape: Sequence[int]) -> Any:
    """``x`` broadcast to the static ``out_shape``: reshape to its rank (when lower), then tile.

    tile is chosen over ``x + zeros(out_shape)`` because it needs no constant of the output's
    size and runs on the Neural Engine.
    """
    dims = list(static_shape(x) or ())
    if len(dims) < len(out_shape):
        dims = [1] * (len(out_shape) - len(dims)) + dims
        x = ctx.mb.reshape(x=x, shape=np.asarray(dims, np.int32))
    reps = [o // d for o, d in zip(out_shape, dims)]
    if all(r == 1 for r in reps):
        return x
    return ctx.mb.tile(x=x, reps=np.asarray(reps, np.int32))


@composite_op("Expand", since=8)
def expand(ctx: LowerContext, node: Node) -> Any:
    """y = x broadcast with shape s (numpy rules, both ways).  MIL: tile (+ reshape) when static; else fill, add.

    A run-time shape (or flexible dims in x) broadcasts through ``add(x, fill(s, 0))``
    (logical_or with False for bool), which follows the same numpy rules.
    """
    x, target = node.input(0), node.input(1)
    tval = ctx.value_of(target)
    dims = static_shape(x)
    if tval is not None and dims is not None:
        try:
            out = tuple(int(d) for d in np.broadcast_shapes(dims, tuple(int(v) for v in tval.reshape(-1))))
        except ValueError:
            raise UnsupportedOpError(
                f"lower: {node.describe()}: shape {tval.tolist()} does not broadcast with x's {list(dims)}"
            ) from None
        _empty_check(node, out)
        xval = ctx.value_of(x)
        if xval is not None:
            return ctx.const(np.broadcast_to(xval, out).copy())
        return broadcast_to(ctx, x, out)
    dtype = ctx.np_dtype(x)
    shape_var = ctx.const(tval.astype(np.int32)) if tval is not None else target
    filled = ctx.mb.fill(shape=shape_var, value=dtype.type(0))
    if dtype == np.bool_:
        return ctx.mb.logical_or(x=x, y=filled)
    return ctx.mb.add(x=x, y=filled)


@onnx_op("Tile", since=6)
def tile(ctx: LowerContext, node: Node) -> Any:
    """y = x repeated repeats[i] times along each dim i.  MIL: tile."""
    x, reps = node.input(0), node.input(1)
    folded = fold(ctx, node, lambda a, r: np.tile(a, tuple(int(v) for v in r.reshape(-1))), 0, 1)
    if folded is not None:
        return folded
    rval = ctx.value_of(reps)
    if rval is None:
        return ctx.mb.tile(x=x, reps=reps)
    rlist = [int(v) for v in rval.reshape(-1)]
    _empty_check(node, rlist)
    if all(r == 1 for r in rlist):
        return x
    return ctx.mb.tile(x=x, reps=np.asarray(rlist, np.int32))
