"""Sorting, scans and distinct values: TopK, CumSum, Unique.

Spec changes read: TopK 1 (k attribute), 10 (K input), 11 (largest, sorted, negative axis),
24 (types); CumSum 11, 14 (types); Unique 11, 28 (types).

ONNX breaks TopK ties by the lower index first.  MIL's topk does not document its tie order;
our executor sorts stably (lower index first), which matches ONNX.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.ops.indexing import const_ints, normalize_axis, static_dim
from pipeline.lowering.registry import composite_op, onnx_op

log = logging.getLogger(__name__)


def _topk(ctx: LowerContext, node: Node, k: int, largest: bool) -> Any:
    x = node.input(0)
    axis = normalize_axis(node, int(node.attr("axis")), x.rank)
    dim = static_dim(x, axis)
    if k < 0 or (dim is not None and k > dim):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: k={k} is outside [0, {dim}] for axis {axis}; fix K in the model"
        )
    # ONNX leaves the order unspecified with sorted=0, so the sorted result is always valid and is
    # what onnxruntime returns; the executor's parity check can only compare sorted outputs.
    values, indices = ctx.mb.topk(x=x, k=k, axis=axis, ascending=not largest)
    return values, indices


@onnx_op("TopK", since=1)
def topk_v1(ctx: LowerContext, node: Node) -> Any:
    """(values, indices) of the k largest x along axis, sorted, ties by lower index.  MIL: topk."""
    return _topk(ctx, node, int(node.attr("k")), True)


@onnx_op("TopK", since=10)
def topk_v10(ctx: LowerContext, node: Node) -> Any:
    """(values, indices) of the K largest (smallest if largest=0) x along axis.  MIL: topk.

    Limits: K must be a constant (MIL's k is const); outputs are always sorted (valid for sorted=0).
    """
    k = const_ints(node, 1, "K")
    if k is None or len(k) != 1:
        raise UnsupportedOpError(f"lower: {node.describe()}: K must be a one-element tensor; fix the model")
    return _topk(ctx, node, k[0], bool(node.attr("largest", 1)))


@onnx_op("CumSum", since=11)
def cumsum(ctx: LowerContext, node: Node) -> Any:
    """y[i] = sum of x[j] for j <= i (j < i if exclusive; j >= i if reverse) along axis.  MIL: cumsum.

    Limits: the axis input must be a constant.
    """
    x = node.input(0)
    axis = const_ints(node, 1, "axis")
    if axis is None or len(axis) != 1:
        raise UnsupportedOpError(f"lower: {node.describe()}: axis must be a one-element tensor; fix the model")
    ax = normalize_axis(node, axis[0], x.rank)
    exclusive, reverse = bool(node.attr("exclusive", 0)), bool(node.attr("reverse", 0))
    xval = ctx.value_of(x)
    if xval is not None:
        # Folded here: coremltools' own value inference of an exclusive cumsum fails on constants.
        return ctx.const(_cumsum_value(xval, ax, exclusive, reverse))
    return ctx.mb.cumsum(x=x, axis=ax, exclusive=exclusive, reverse=reverse)


def _cumsum_value(x: np.ndarray, axis: int, exclusive: bool, reverse: bool) -> np.ndarray:
    """CumSum of a constant with numpy, in x's dtype."""
    data = np.flip(x, axis) if reverse else x
    out = np.cumsum(data, axis=axis, dtype=x.dtype)
    if exclusive:
        out = np.concatenate([np.zeros_like(np.take(out, [0], axis=axis)), np.delete(out, -1, axis=axis)], axis=axis)
    return np.flip(out, axis) if reverse else out


def _int(ctx: LowerContext, var: Any) -> Any:
    return ctx.mb.cast(x=var, dtype="int32")


@composite_op("Unique", since=11)
def unique(ctx: LowerContext, node: Node) -> Any:
    """(Y, indices, inverse_indices, counts): the distinct values of flattened x, ascending (sorted=1)
    or in order of first occurrence (sorted=0), with first positions, x's position in Y, and counts.

    Composite (MIL has no unique): the n x n equality matrix E[i, j] = x[i] == x[j] is exact in
    any dtype; first[i] = no equal x[j] with j < i (E masked by a strict lower triangle), the
    distinct values are non_zero(first); sorted=1 ranks each value by the count of smaller first
    occurrences (no ties, so argsort's tie order does not matter); counts = row sums of E.
    Limits: O(n^2) memory in the element count n, which must be static; ``axis`` only for 1-D x;
    NaNs count as distinct values.
    """
    mb = ctx.mb
    x = node.input(0)
    if node.has_attr("axis") and x.rank != 1:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: Unique along an axis of a rank-{x.rank} tensor has no Core ML "
            "composite; flatten the input or remove the axis attribute"
        )
    n = int(np.prod(x.shape)) if all(isinstance(d, (int, np.integer)) for d in x.shape) else None
    if n is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: Unique needs the element count known at conversion time; "
            "give the model static shapes"
        )
    flat = mb.reshape(x=x, shape=np.asarray([n], np.int32)) if x.rank != 1 else x
    is_bool = ctx.np_dtype(flat) == np.bool_
    keys = _int(ctx, flat) if is_bool else flat
    column = mb.expand_dims(x=keys, axes=[1])  # [n, 1]
    equal = _int(ctx, mb.equal(x=column, y=keys))  # E[i, j]
    strictly_before = np.tril(np.ones((n, n), np.int32), k=-1)  # [i, j] = j < i
    earlier = mb.reduce_sum(x=mb.mul(x=equal, y=strictly_before), axes=[1])
    first = _int(ctx, mb.equal(x=earlier, y=np.int32(0)))  # 1 at first occurrences
    first_idx = mb.reshape(x=mb.non_zero(x=first), shape=np.asarray([-1], np.int32))
    wanted = [bool(name) for name in node.output_names] + [False] * 4
    if int(node.attr("sorted", 1)):
        smaller = _int(ctx, mb.less(x=keys, y=column))  # [i, j] = x[j] < x[i]
        inverse = mb.reduce_sum(x=mb.mul(x=smaller, y=first), axes=[1])  # distinct values below x[i]
        order = mb.argsort(x=mb.gather(x=inverse, indices=first_idx, axis=0), axis=0, ascending=True)
        picked = mb.gather(x=first_idx, indices=order, axis=0)
    else:
        picked, inverse = first_idx, None
        if wanted[2]:
            group = mb.sub(x=mb.cumsum(x=first, axis=0), y=np.int32(1))  # group id at first occurrences
            inverse = mb.reduce_sum(x=mb.mul(x=equal, y=mb.mul(x=first, y=group)), axes=[1])
    values = mb.gather(x=keys, indices=picked, axis=0)
    outputs = [ctx.cast(values, np.bool_) if is_bool else values, picked, inverse, None]
    if wanted[3]:
        outputs[3] = mb.gather(x=mb.reduce_sum(x=equal, axes=[1]), indices=picked, axis=0)
    return tuple(out if wanted[k] else None for k, out in enumerate(outputs))[: len(node.output_names)]
