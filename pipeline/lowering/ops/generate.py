"""Tensor generators and masks: ConstantOfShape, Range, EyeLike, Trilu, OneHot.

What is known at conversion time becomes a constant (numpy); only run-time shapes, bounds and
indices emit MIL ops.

Spec changes read: ConstantOfShape 9, 20, 21, 23-25 (types only); Range 11; EyeLike 9, 22
(types); Trilu 14; OneHot 9, 11 (negative indices count from the end).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.dtypes import legalize_array, onnx_to_numpy
from pipeline.lowering.node import Node
from pipeline.lowering.ops.shape import norm_axis, static_shape
from pipeline.lowering.registry import composite_op, onnx_op

log = logging.getLogger(__name__)

#: Constants up to this many elements are folded; larger ones stay a ``fill`` so that the
#: conversion does not materialize them (coremltools' passes decide later).
_FOLD_LIMIT = 1 << 16

#: MIL ops whose (integer) outputs are never negative: OneHot needs no wrap of their values.
_NON_NEGATIVE = {"reduce_argmax", "reduce_argmin", "argsort", "shape", "non_zero", "topk"}


def _empty(node: Node, shape: Any) -> UnsupportedOpError:
    return UnsupportedOpError(
        f"lower: {node.describe()}: produces an empty tensor (shape {list(shape)}); Core ML has "
        "no zero-sized tensors. Remove the empty branch from the model"
    )


@onnx_op("ConstantOfShape", since=9)
def constant_of_shape(ctx: LowerContext, node: Node) -> Any:
    """y = a tensor of shape s filled with value (float32 0 by default).  MIL: const, or fill.

    Limits: a shape containing 0 (an empty tensor) is unsupported.
    """
    value = node.attrs.get("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    scalar = legalize_array(value[:1])[0][0]
    sval = ctx.value_of(node.input(0))
    if sval is not None:
        dims = [int(d) for d in sval.reshape(-1)]
        if 0 in dims:
            raise _empty(node, dims)
        if int(np.prod(dims)) <= _FOLD_LIMIT:
            return ctx.const(np.full(dims, value[0], dtype=value.dtype))
        return ctx.mb.fill(shape=np.asarray(dims, np.int32), value=scalar)
    return ctx.mb.fill(shape=node.input(0), value=scalar)


@onnx_op("Range", since=11)
def range_(ctx: LowerContext, node: Node) -> Any:
    """y[i] = start + i * delta for i < max(ceil((limit - start) / delta), 0).  MIL: const, or range_1d."""
    start, limit, delta = (node.input(i) for i in range(3))
    vals = [ctx.value_of(v) for v in (start, limit, delta)]
    if all(v is not None for v in vals):
        s, lim, d = (np.asarray(v).reshape(()) for v in vals)
        count = max(int(np.ceil((float(lim) - float(s)) / float(d))), 0)
        if count == 0:
            raise _empty(node, [0])
        return ctx.const((s + np.arange(count, dtype=s.dtype) * d).astype(s.dtype))
    return ctx.mb.range_1d(start=start, end=limit, step=delta)


@onnx_op("EyeLike", since=9)
def eye_like(ctx: LowerContext, node: Node) -> Any:
    """y[i, j] = 1 if j - i == k else 0, shaped like the 2-D x, of type dtype (x's by default).

    MIL: const for a static shape; fill + band_part for k = 0 on flexible shapes.
    Limits: k != 0 with flexible dims is unsupported.
    """
    x = node.input(0)
    k = int(node.attrs.get("k", 0))
    dtype = node.attrs.get("dtype")
    exact = onnx_to_numpy(int(dtype)) if dtype is not None else ctx.np_dtype(x)
    dims = static_shape(x)
    if x.rank != 2:
        raise UnsupportedOpError(f"lower: {node.describe()}: input must be rank 2, got {x.rank}")
    if dims is not None:
        return ctx.const(np.eye(dims[0], dims[1], k, dtype=exact))
    if k != 0:
        raise UnsupportedOpError(f"lower: {node.describe()}: k={k} on a flexible shape; fix the input shape")
    one = legalize_array(np.ones(1, exact))[0][0]
    ones = ctx.mb.fill(shape=ctx.mb.shape(x=x), value=one)
    return ctx.mb.band_part(x=ones, lower=0, upper=0)


@composite_op("Trilu", since=14)
def trilu(ctx: LowerContext, node: Node) -> Any:
    """upper: y = x where j - i >= k else 0; lower: y = x where j - i <= k else 0 (last two dims).

    MIL: band_part where it expresses the band (upper with k <= 0, lower with k >= 0); otherwise
    select with a constant boolean mask.  A mask beats ``x - band_part(x)`` because the
    subtraction turns -inf entries (attention masks) into NaN.
    Limits: k must be a constant; the mask form needs static last two dims.
    """
    x = node.input(0)
    upper = bool(node.attrs.get("upper", 1))
    k = 0
    if node.has_input(1):
        kval = ctx.value_of(node.input(1))
        if kval is None:
            raise UnsupportedOpError(f"lower: {node.describe()}: k is computed at run time; MIL needs a constant")
        k = int(np.asarray(kval).reshape(-1)[0])
    xval = ctx.value_of(x)
    if xval is not None:
        return ctx.const(np.triu(xval, k) if upper else np.tril(xval, k))
    if upper and k <= 0:
        return ctx.mb.band_part(x=x, lower=np.int32(-k), upper=np.int32(-1))
    if not upper and k >= 0:
        return ctx.mb.band_part(x=x, lower=np.int32(-1), upper=np.int32(k))
    dims = x.shape[-2:]
    if any(not isinstance(d, (int, np.integer)) for d in dims):
        raise UnsupportedOpError(f"lower: {node.describe()}: k={k} needs static last two dims")
    ones = np.ones((int(dims[0]), int(dims[1])), bool)
    mask = np.triu(ones, k) if upper else np.tril(ones, k)
    zero = np.zeros((), ctx.np_dtype(x))
    return ctx.mb.select(cond=ctx.const(mask), a=x, b=zero)


def _non_negative(var: Any) -> bool:
    """Whether ``var`` is produced by an op whose values are never negative."""
    op = getattr(var, "op", None)
    return op is not None and op.op_type in _NON_NEGATIVE


@composite_op("OneHot", since=9)
def one_hot(ctx: LowerContext, node: Node) -> Any:
    """y[..., j at axis, ...] = on if j == index (negative index + depth, opset 11) else off.

    MIL: one_hot.  Negative run-time indices need less/add/select first (skipped when the
    indices come from an op that never yields negatives, e.g. argmax); run-time values add a
    select; all-constant inputs fold.
    Limits: out-of-range indices give all-off rows, as ONNX says.
    """
    indices, depth, values = node.input(0), node.input(1), node.input(2)
    axis = int(node.attrs.get("axis", -1))
    axis = norm_axis(node, axis, indices.rank + 1)
    dval, ival, vval = ctx.value_of(depth), ctx.value_of(indices), ctx.value_of(values)
    if dval is not None and ival is not None and vval is not None:
        d = int(np.asarray(dval).reshape(-1)[0])
        idx = np.asarray(ival).astype(np.int64)
        idx = np.where(idx < 0, idx + d, idx)
        hot = np.expand_dims(idx, axis) == np.arange(d).reshape([-1 if i == axis else 1 for i in range(idx.ndim + 1)])
        return ctx.const(np.where(hot, vval.reshape(-1)[1], vval.reshape(-1)[0]))
    if ctx.np_dtype(indices) != np.int32:
        indices = ctx.cast(indices, np.int32)
    if dval is not None:
        size: Any = np.int32(int(np.asarray(dval).reshape(-1)[0]))
    else:
        size = ctx.cast(depth, np.int32)
        if depth.rank:
            size = ctx.mb.squeeze(x=size)
    if ival is not None and dval is not None:
        d = int(size)
        indices = ctx.const(np.where(ival < 0, ival + d, ival).astype(np.int32))
    elif not _non_negative(node.input(0)):
        wrapped = ctx.mb.add(x=indices, y=size)
        indices = ctx.mb.select(cond=ctx.mb.less(x=indices, y=np.int32(0)), a=wrapped, b=indices)
    if vval is not None:
        flat = vval.reshape(-1)
        legal = ctx.np_dtype(values)
        return ctx.mb.one_hot(
            indices=indices, one_hot_vector_size=size, axis=axis,
            on_value=legal.type(flat[1]), off_value=legal.type(flat[0]),
        )
    hot = ctx.mb.one_hot(indices=indices, one_hot_vector_size=size, axis=axis, on_value=True, off_value=False)
    on = ctx.mb.slice_by_index(x=values, begin=[1], end=[2])
    off = ctx.mb.slice_by_index(x=values, begin=[0], end=[1])
    return ctx.mb.select(cond=hot, a=on, b=off)
