"""Normalizing activations: Softmax, LogSoftmax, Hardmax.

Before opset 13 these ops coerce the input to 2-D at ``axis`` (default 1) and normalize over the
flattened trailing block ``[axis, rank)``; from 13 on they normalize over the single ``axis``
(default -1).  Where the two agree (axis is the last dimension) both lower to the same MIL.

Spec changes read: Softmax/LogSoftmax/Hardmax 1, 11 (negative axis), 13 (single axis).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.registry import composite_op, onnx_op

log = logging.getLogger(__name__)


def _axis(node: Node, rank: int) -> int:
    """The node's ``axis`` attribute as a non-negative index into ``rank`` dims."""
    axis = int(node.attrs["axis"])
    if not -rank <= axis < max(rank, 1):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: axis={axis} is out of range for rank {rank}; fix the model"
        )
    return axis % max(rank, 1)


def _static_shape(var: Any) -> tuple[int, ...] | None:
    shape = tuple(var.shape)
    return shape if all(isinstance(d, int) for d in shape) else None


def _as_2d(ctx: LowerContext, x: Any, axis: int) -> tuple[Any, tuple[int, ...]] | None:
    """x reshaped to (prod(shape[:axis]), prod(shape[axis:])) and the original shape, or None when dynamic."""
    shape = _static_shape(x)
    if shape is None:
        return None
    flat = (math.prod(shape[:axis]), math.prod(shape[axis:]))
    return ctx.mb.reshape(x=x, shape=np.array(flat, np.int32)), shape


@onnx_op("Softmax", since=1)
def softmax_v1(ctx: LowerContext, node: Node) -> Any:
    """y = exp(x) / sum(exp(x)) over the flattened block [axis, rank).  MIL: softmax (last axis), else reshape, softmax, reshape.

    A dynamic shape with axis not last falls back to reduce_max, sub, exp, reduce_sum, real_div
    over the trailing axes (max subtracted for range, as softmax does internally).
    """
    x = node.input(0)
    rank = x.rank
    axis = _axis(node, rank)
    if axis >= rank - 1:
        return ctx.mb.softmax(x=x, axis=-1)
    flat = _as_2d(ctx, x, axis)
    if flat is not None:
        y = ctx.mb.softmax(x=flat[0], axis=-1)
        return ctx.mb.reshape(x=y, shape=np.array(flat[1], np.int32))
    axes = list(range(axis, rank))
    mb = ctx.mb
    shifted = mb.sub(x=x, y=mb.reduce_max(x=x, axes=axes, keep_dims=True))
    e = mb.exp(x=shifted)
    return mb.real_div(x=e, y=mb.reduce_sum(x=e, axes=axes, keep_dims=True))


@onnx_op("Softmax", since=13)
def softmax_v13(ctx: LowerContext, node: Node) -> Any:
    """y = exp(x) / sum(exp(x)) along axis.  MIL: softmax."""
    x = node.input(0)
    return ctx.mb.softmax(x=x, axis=_axis(node, x.rank))


def _log_softmax(ctx: LowerContext, x: Any, axes: list[int]) -> Any:
    """x - ln(sum(exp(x))) over ``axes``: sub, reduce_log_sum_exp (MIL has no log_softmax).

    Chosen over log(softmax(x)) (also two ops): softmax underflows to 0 for logits more than
    ~88 (fp32) or ~17 (fp16) below the maximum, making log give -inf where ONNX is finite.
    """
    lse = ctx.mb.reduce_log_sum_exp(x=x, axes=axes, keep_dims=True)
    return ctx.mb.sub(x=x, y=lse)


@composite_op("LogSoftmax", since=1)
def log_softmax_v1(ctx: LowerContext, node: Node) -> Any:
    """y = x - ln(sum(exp(x))) over the flattened block [axis, rank).  MIL: reduce_log_sum_exp over the trailing axes, sub."""
    x = node.input(0)
    axis = _axis(node, x.rank)
    return _log_softmax(ctx, x, list(range(axis, max(x.rank, 1))))


@composite_op("LogSoftmax", since=13)
def log_softmax_v13(ctx: LowerContext, node: Node) -> Any:
    """y = x - ln(sum(exp(x))) along axis.  MIL: reduce_log_sum_exp, sub."""
    x = node.input(0)
    return _log_softmax(ctx, x, [_axis(node, x.rank)])


def _hardmax(ctx: LowerContext, x: Any, axis: int) -> Any:
    """one_hot(argmax(x, axis)) in x's dtype: reduce_argmax, one_hot (ties pick the first index, as ONNX)."""
    mb = ctx.mb
    depth = x.shape[axis]
    if not isinstance(depth, int):
        depth = mb.gather(x=mb.shape(x=x), indices=np.int32(axis), axis=0)
    idx = mb.reduce_argmax(x=x, axis=axis, keep_dims=False)
    return mb.one_hot(
        indices=idx,
        one_hot_vector_size=depth,
        axis=axis,
        on_value=ctx.scalar_like(x, 1),
        off_value=ctx.scalar_like(x, 0),
    )


@composite_op("Hardmax", since=1)
def hardmax_v1(ctx: LowerContext, node: Node) -> Any:
    """y = 1 at the first maximum of the flattened block [axis, rank), else 0.  MIL: reduce_argmax, one_hot (reshapes around them unless axis is last).

    Limits: a dynamic shape with axis not last is not lowered.
    """
    x = node.input(0)
    axis = _axis(node, x.rank)
    if axis >= x.rank - 1:
        return _hardmax(ctx, x, x.rank - 1)
    flat = _as_2d(ctx, x, axis)
    if flat is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: Hardmax before opset 13 over a dynamic shape is not lowered; "
            "export with opset >= 13 or fix the input shape"
        )
    return ctx.mb.reshape(x=_hardmax(ctx, flat[0], 1), shape=np.array(flat[1], np.int32))


@composite_op("Hardmax", since=13)
def hardmax_v13(ctx: LowerContext, node: Node) -> Any:
    """y = 1 at the first maximum along axis, else 0.  MIL: reduce_argmax, one_hot."""
    x = node.input(0)
    return _hardmax(ctx, x, _axis(node, x.rank))
