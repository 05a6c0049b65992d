"""Padding: Pad (modes constant, reflect, edge, wrap).

MIL ``pad`` takes fp16/fp32 tensors in modes constant, reflect and replicate (ONNX's edge); it
is used for those.  Wrap mode (opset 19), and integer or bool tensors, become a composite per
padded axis: slices of the input concatenated around it (``reverse`` for reflect), all of which
run on the Neural Engine.  Negative pads crop with one ``slice_by_index`` first.

Spec changes read: Pad 2 (pads/mode/value attributes), 11 (pads and constant_value become
inputs), 13 (bfloat16), 18 (axes input), 19 (wrap mode), 21, 23, 24, 25 (types only).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.ops.shape import const_ints, norm_axis, static_shape
from pipeline.lowering.registry import onnx_op

log = logging.getLogger(__name__)

_MIL_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}


def slice_axis(ctx: LowerContext, x: Any, axis: int, start: int, stop: int | None) -> Any:
    """x[..., start:stop, ...] along ``axis`` (stop None = to the end).  MIL: slice_by_index."""
    rank = x.rank
    begin = [0] * rank
    end = [0] * rank
    begin[axis] = start
    end[axis] = 0 if stop is None else stop
    begin_mask = [i != axis for i in range(rank)]
    end_mask = [i != axis or stop is None for i in range(rank)]
    return ctx.mb.slice_by_index(
        x=x, begin=np.asarray(begin, np.int32), end=np.asarray(end, np.int32),
        begin_mask=begin_mask, end_mask=end_mask,
    )


def _crop(ctx: LowerContext, x: Any, before: list[int], after: list[int]) -> Any:
    """Remove -p elements on each side where a pad p is negative (one slice for all axes)."""
    rank = x.rank
    begin = [max(-b, 0) for b in before]
    end = [-max(-a, 0) for a in after]
    end_mask = [e == 0 for e in end]
    return ctx.mb.slice_by_index(
        x=x, begin=np.asarray(begin, np.int32), end=np.asarray(end, np.int32),
        begin_mask=[False] * rank, end_mask=end_mask,
    )


def _side_pieces(ctx: LowerContext, node: Node, x: Any, axis: int, count: int, mode: str, value: Any,
                 before: bool) -> list[Any]:
    """The values concatenated before (or after) x along ``axis`` to pad it by ``count``."""
    if count == 0:
        return []
    dims = static_shape(x)
    dim = x.shape[axis]
    if not isinstance(dim, (int, np.integer)):
        raise UnsupportedOpError(f"lower: {node.describe()}: padding a flexible axis {axis} needs a static size")
    dim = int(dim)
    if mode == "constant":
        if dims is None:
            raise UnsupportedOpError(f"lower: {node.describe()}: integer constant padding needs static shapes")
        block = list(dims)
        block[axis] = count
        return [ctx.const(np.full(block, value, dtype=ctx.np_dtype(x)))]
    if mode == "edge":
        edge = slice_axis(ctx, x, axis, 0, 1) if before else slice_axis(ctx, x, axis, dim - 1, None)
        return [edge] * count
    if mode == "reflect":
        if count > dim - 1:
            raise UnsupportedOpError(f"lower: {node.describe()}: reflect pad {count} exceeds dim {dim} - 1")
        part = slice_axis(ctx, x, axis, 1, count + 1) if before else slice_axis(ctx, x, axis, dim - 1 - count, dim - 1)
        return [ctx.mb.reverse(x=part, axes=[axis])]
    # wrap: the tail of x comes before, the head after; whole copies for pads longer than dim.
    whole, rest = divmod(count, dim)
    if before:
        return ([slice_axis(ctx, x, axis, dim - rest, None)] if rest else []) + [x] * whole
    return [x] * whole + ([slice_axis(ctx, x, axis, 0, rest)] if rest else [])


def _pad_composite(ctx: LowerContext, node: Node, x: Any, before: list[int], after: list[int], mode: str,
                   value: Any) -> Any:
    """Pad axis by axis with slices + concat (wrap mode, integer/bool tensors)."""
    for axis in range(x.rank):
        pieces_before = _side_pieces(ctx, node, x, axis, before[axis], mode, value, True)
        pieces_after = _side_pieces(ctx, node, x, axis, after[axis], mode, value, False)
        if pieces_before or pieces_after:
            x = ctx.mb.concat(values=pieces_before + [x] + pieces_after, axis=axis)
    return x


def _pad(ctx: LowerContext, node: Node, pads: list[int], mode: str, value: Any, axes: list[int] | None) -> Any:
    x = node.input(0)
    rank = x.rank
    axes = list(range(rank)) if axes is None else [norm_axis(node, a, rank) for a in axes]
    if len(pads) != 2 * len(axes):
        raise UnsupportedOpError(f"lower: {node.describe()}: {len(pads)} pads for {len(axes)} axes")
    before, after = [0] * rank, [0] * rank
    for i, a in enumerate(axes):
        before[a], after[a] = pads[i], pads[i + len(axes)]
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise UnsupportedOpError(f"lower: {node.describe()}: mode '{mode}' is not constant/reflect/edge/wrap")
    if any(p < 0 for p in before + after):
        x = _crop(ctx, x, before, after)
        before, after = [max(b, 0) for b in before], [max(a, 0) for a in after]
    if not any(before + after):
        return x
    if mode == "wrap" or not ctx.is_float(x):
        return _pad_composite(ctx, node, x, before, after, mode, value)
    first = min(i for i in range(rank) if before[i] or after[i])
    flat = [p for i in range(first, rank) for p in (before[i], after[i])]
    return ctx.mb.pad(
        x=x, pad=np.asarray(flat, np.int32), mode=_MIL_MODES[mode],
        constant_val=ctx.scalar_like(x, value),
    )


@onnx_op("Pad", since=2)
def pad(ctx: LowerContext, node: Node) -> Any:
    """y = x padded by attribute pads ([begins..., ends...]); mode constant/reflect/edge.  MIL: pad."""
    pads = [int(p) for p in node.attrs.get("pads") or node.attrs.get("paddings") or []]
    return _pad(ctx, node, pads, str(node.attrs.get("mode", "constant")), float(node.attrs.get("value", 0.0)), None)


def _dynamic_pad(ctx: LowerContext, node: Node, value: Any) -> Any:
    """Run-time pads, constant mode, float x: reorder [begins, ends] to MIL's interleaved pairs."""
    x, pads = node.input(0), node.input(1)
    mode = str(node.attrs.get("mode", "constant"))
    if mode != "constant" or not ctx.is_float(x) or node.has_input(3):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: run-time pads are supported only for constant mode on float "
            "tensors without axes; fix the input shapes (--input-shape) so that pads fold"
        )
    pairs = ctx.mb.transpose(x=ctx.mb.reshape(x=pads, shape=np.asarray([2, x.rank], np.int32)), perm=[1, 0])
    flat = ctx.mb.reshape(x=pairs, shape=np.asarray([2 * x.rank], np.int32))
    return ctx.mb.pad(x=x, pad=flat, mode="constant", constant_val=ctx.scalar_like(x, value))


@onnx_op("Pad", since=11)
def pad_v11(ctx: LowerContext, node: Node) -> Any:
    """y = x padded by input pads, constant_value, and (opset 18) axes; wrap mode from opset 19.

    MIL: pad (float; constant/reflect/edge); slices + reverse + concat for wrap and integer tensors.
    Limits: run-time pads only in constant mode on floats; the constant value must be a constant;
    negative run-time pads are not checked (MIL rejects them).
    """
    value: Any = 0
    if node.has_input(2):
        cval = ctx.value_of(node.input(2))
        if cval is None:
            raise UnsupportedOpError(f"lower: {node.describe()}: constant_value is computed at run time; MIL needs a constant")
        value = cval.reshape(-1)[0] if cval.size else 0
    if ctx.value_of(node.input(1)) is None:
        return _dynamic_pad(ctx, node, value)
    pads = const_ints(ctx, node, 1, "pads") or []
    axes = const_ints(ctx, node, 3, "axes")
    return _pad(ctx, node, pads, str(node.attrs.get("mode", "constant")), value, axes)
