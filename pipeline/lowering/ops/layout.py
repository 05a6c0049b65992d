"""Layout ops: Transpose, Concat, Split, DepthToSpace, SpaceToDepth.

Spec changes read: Transpose 1, 13, 21+ (types); Concat 1, 4 (axis required), 11 (negative
axis), 13; Split 1, 2, 11 (negative axis), 13 (split moves to an input), 18 (num_outputs, uneven
last chunk); DepthToSpace 1, 11 (mode DCR/CRD), 13; SpaceToDepth 1, 13.
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


@onnx_op("Transpose", since=1)
def transpose(ctx: LowerContext, node: Node) -> Any:
    """y = x with axes permuted by perm (reversed by default).  MIL: transpose (nothing for the identity perm)."""
    x = node.input(0)
    perm = node.attrs.get("perm")
    perm = list(range(x.rank))[::-1] if perm is None else [int(p) for p in perm]
    if sorted(perm) != list(range(x.rank)):
        raise UnsupportedOpError(f"lower: {node.describe()}: perm {perm} is not a permutation of rank {x.rank}")
    if perm == list(range(x.rank)):
        return x
    xval = ctx.value_of(x)
    if xval is not None:
        return ctx.const(np.transpose(xval, perm))
    return ctx.mb.transpose(x=x, perm=np.asarray(perm, np.int32))


@onnx_op("Concat", since=4)
def concat(ctx: LowerContext, node: Node) -> Any:
    """y = inputs joined along axis.  MIL: concat; constants fold; empty inputs are dropped.

    Exporters concatenate empty initializers into shape tensors; Core ML has no empty tensors, so
    an input that is statically empty along the axis is left out (it contributes nothing).
    """
    values = [v for v in node.inputs if v is not None]
    axis = norm_axis(node, int(node.attrs["axis"]), values[0].rank)
    kept = [v for v in values if v.shape[axis] != 0]
    if not kept:
        raise UnsupportedOpError(f"lower: {node.describe()}: every input is empty; Core ML has no empty tensors")
    if len(kept) == 1:
        return kept[0]
    consts = [c for c in (ctx.value_of(v) for v in kept) if c is not None]
    if len(consts) == len(kept):
        return ctx.const(np.concatenate(consts, axis=axis))
    dtype = ctx.np_dtype(kept[0])
    kept = [ctx.cast(v, dtype) for v in kept]
    return ctx.mb.concat(values=kept, axis=axis)


def _split_sizes(node: Node, x: Any, axis: int, split: list[int] | None) -> list[int] | None:
    """Explicit sizes per output, or None for an even split into len(outputs) parts."""
    n_out = len(node.output_names)
    dim = x.shape[axis]
    if split is not None:
        if isinstance(dim, (int, np.integer)) and sum(split) != dim:
            raise UnsupportedOpError(f"lower: {node.describe()}: split {split} does not sum to dim {dim}")
        return split
    n = int(node.attrs["num_outputs"]) if node.attrs.get("num_outputs") is not None else n_out
    if not isinstance(dim, (int, np.integer)):
        return None
    if dim % n == 0:
        return None
    if node.attrs.get("num_outputs") is None:
        raise UnsupportedOpError(f"lower: {node.describe()}: dim {dim} does not split evenly into {n} outputs")
    # Opset 18: chunks of ceil(dim / n), the last one smaller.
    chunk = -(-int(dim) // n)
    return [chunk] * (n - 1) + [int(dim) - chunk * (n - 1)]


def _split(ctx: LowerContext, node: Node, split: list[int] | None) -> Any:
    x = node.input(0)
    axis = norm_axis(node, int(node.attrs.get("axis", 0)), x.rank)
    sizes = _split_sizes(node, x, axis, split)
    n_out = len(node.output_names)
    if n_out == 1:
        return (x,)
    if sizes is not None and any(s <= 0 for s in sizes):
        raise UnsupportedOpError(f"lower: {node.describe()}: split sizes {sizes} make empty tensors; Core ML has none")
    xval = ctx.value_of(x)
    if xval is not None:
        bounds = np.cumsum(sizes)[:-1] if sizes is not None else n_out
        return tuple(ctx.const(p) for p in np.split(xval, bounds, axis=axis))
    if sizes is None:
        parts = ctx.mb.split(x=x, num_splits=n_out, axis=axis)
    else:
        parts = ctx.mb.split(x=x, split_sizes=np.asarray(sizes, np.int32), axis=axis)
    return tuple(parts)


@onnx_op("Split", since=2)
def split(ctx: LowerContext, node: Node) -> Any:
    """ys = x cut along axis into the sizes of attribute split (even parts by default).  MIL: split."""
    sizes = node.attrs.get("split")
    return _split(ctx, node, None if not sizes else [int(s) for s in sizes])


@onnx_op("Split", since=13)
def split_v13(ctx: LowerContext, node: Node) -> Any:
    """ys = x cut along axis into the sizes of input split; opset 18 adds num_outputs.  MIL: split.

    Limits: a run-time split input is unsupported (MIL needs the sizes constant).
    """
    return _split(ctx, node, const_ints(ctx, node, 1, "split"))


def _rank4(ctx: LowerContext, node: Node) -> tuple[Any, tuple[int, int, int, int] | None, int]:
    x = node.input(0)
    if x.rank != 4:
        raise UnsupportedOpError(f"lower: {node.describe()}: input must be rank 4 (NCHW), got rank {x.rank}")
    dims = static_shape(x)
    return x, None if dims is None else (dims[0], dims[1], dims[2], dims[3]), int(node.attrs["blocksize"])


def _shuffle(ctx: LowerContext, x: Any, inner: list[int], perm: list[int], out: list[int]) -> Any:
    """reshape -> transpose -> reshape: the exact integer form of the pixel shuffles."""
    y = ctx.mb.reshape(x=x, shape=np.asarray(inner, np.int32))
    y = ctx.mb.transpose(x=y, perm=np.asarray(perm, np.int32))
    return ctx.mb.reshape(x=y, shape=np.asarray(out, np.int32))


@onnx_op("DepthToSpace", since=1)
def depth_to_space(ctx: LowerContext, node: Node) -> Any:
    """y[n, c, h*b+i, w*b+j] = x[n, (i*b+j)*C' + c, h, w] (DCR) or x[n, c*b*b + i*b + j, h, w] (CRD).

    MIL: depth_to_space (DCR, the TensorFlow order) or pixel_shuffle (CRD, PyTorch's order): one
    op each.  Integer tensors (MIL's ops are float-only) use reshape/transpose/reshape, exact.
    Limits: rank-4 input; integer tensors need static shapes.
    """
    x, dims, b = _rank4(ctx, node)
    mode = str(node.attrs.get("mode", "DCR")).upper()
    if mode not in ("DCR", "CRD"):
        raise UnsupportedOpError(f"lower: {node.describe()}: mode '{mode}' is not DCR or CRD")
    if ctx.is_float(x):
        if mode == "DCR":
            return ctx.mb.depth_to_space(x=x, block_size=b)
        return ctx.mb.pixel_shuffle(x=x, upscale_factor=b)
    if dims is None:
        raise UnsupportedOpError(f"lower: {node.describe()}: integer input needs a static shape")
    n, c, h, w = dims
    out = [n, c // (b * b), h * b, w * b]
    if mode == "DCR":
        return _shuffle(ctx, x, [n, b, b, c // (b * b), h, w], [0, 3, 4, 1, 5, 2], out)
    return _shuffle(ctx, x, [n, c // (b * b), b, b, h, w], [0, 1, 4, 2, 5, 3], out)


@onnx_op("SpaceToDepth", since=1)
def space_to_depth(ctx: LowerContext, node: Node) -> Any:
    """y[n, (i*b+j)*C + c, h, w] = x[n, c, h*b+i, w*b+j] (DCR) or y[n, c*b*b + i*b + j, h, w] (CRD, opset 28).

    MIL: space_to_depth (DCR) or pixel_unshuffle (CRD, PyTorch's order, iOS16+): one op each.
    Integer tensors (MIL's ops are float-only) and CRD below iOS16 use reshape/transpose/reshape, exact.
    Limits: rank-4 input; the reshape form needs static shapes.
    """
    x, dims, b = _rank4(ctx, node)
    mode = str(node.attrs.get("mode", "DCR")).upper()
    if mode not in ("DCR", "CRD"):
        raise UnsupportedOpError(f"lower: {node.describe()}: mode '{mode}' is not DCR or CRD")
    if ctx.is_float(x):
        if mode == "DCR":
            return ctx.mb.space_to_depth(x=x, block_size=b)
        if ctx.target >= 16:
            return ctx.mb.pixel_unshuffle(x=x, downscale_factor=np.uint32(b))
    if dims is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: this form needs a static input shape (integer input, or CRD "
            "below iOS16); fix the input shape or use --target iOS16 or newer"
        )
    n, c, h, w = dims
    perm = [0, 3, 5, 1, 2, 4] if mode == "DCR" else [0, 1, 3, 5, 2, 4]
    return _shuffle(ctx, x, [n, c, h // b, b, w // b, b], perm, [n, c * b * b, h // b, w // b])
