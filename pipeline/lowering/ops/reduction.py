"""Reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2,
ReduceLogSum, ReduceLogSumExp, ReduceSumSquare, ArgMax, ArgMin.

Each ONNX reduction has a MIL twin (``reduce_*``) of the same formula, so every handler is one
MIL op (with ``noop_with_empty_axes`` and empty axes, only its elementwise step, if any).

Spec changes read: ``axes`` is an attribute until ReduceSum-13 and the other reductions' opset 18,
then an optional input, together with ``noop_with_empty_axes`` (empty axes: reduce nothing
instead of everything); opsets 11/13 only widened axes to negatives and types.  ArgMax/ArgMin:
1, 11 (negative axis), 12 (select_last_index), 13.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.registry import onnx_op

log = logging.getLogger(__name__)

# ONNX op -> (MIL op, opset from which axes is an input, one line of math).
_REDUCTIONS = {
    "ReduceSum": ("reduce_sum", 13, "sum(x)"),
    "ReduceMean": ("reduce_mean", 18, "mean(x)"),
    "ReduceMax": ("reduce_max", 18, "max(x)"),
    "ReduceMin": ("reduce_min", 18, "min(x)"),
    "ReduceProd": ("reduce_prod", 18, "prod(x)"),
    "ReduceL1": ("reduce_l1_norm", 18, "sum(|x|)"),
    "ReduceL2": ("reduce_l2_norm", 18, "sqrt(sum(x^2))"),
    "ReduceLogSum": ("reduce_log_sum", 18, "ln(sum(x))"),
    "ReduceLogSumExp": ("reduce_log_sum_exp", 18, "ln(sum(exp(x)))"),
    "ReduceSumSquare": ("reduce_sum_square", 18, "sum(x^2)"),
}


def _elementwise_part(ctx: LowerContext, x: Any, mil_name: str) -> Any:
    """A reduction over no axes: only its elementwise steps remain (ONNX-18 noop_with_empty_axes).

    The spec keeps the non-reduction steps: ReduceL1/L2 give |x|, ReduceSumSquare x^2,
    ReduceLogSum ln(x); sum, mean, max, min, prod and log-sum-exp of one element give x.
    """
    mb = ctx.mb
    if mil_name in ("reduce_l1_norm", "reduce_l2_norm"):
        return mb.abs(x=x)
    if mil_name == "reduce_sum_square":
        return mb.square(x=x)
    if mil_name == "reduce_log_sum":
        return mb.log(x=x, epsilon=ctx.scalar_like(x, 0.0))
    return mb.identity(x=x)


def _reduce(
    ctx: LowerContext, node: Node, mil_name: str, axes: np.ndarray | None, noop_if_empty: bool
) -> Any:
    """The MIL reduction of input 0 over ``axes`` (None or empty: all axes, or none if ``noop_if_empty``)."""
    x = node.input(0)
    if ctx.np_dtype(x) == np.bool_:
        # ReduceMax/ReduceMin take bool from opset 20 (any / all); MIL reduces numbers only.
        as_int = _reduce_numeric(ctx, node, mil_name, ctx.cast(x, np.int32), axes, noop_if_empty)
        return ctx.cast(as_int, np.bool_)
    return _reduce_numeric(ctx, node, mil_name, x, axes, noop_if_empty)


def _reduce_numeric(
    ctx: LowerContext, node: Node, mil_name: str, x: Any, axes: np.ndarray | None, noop_if_empty: bool
) -> Any:
    keep = bool(node.attrs.get("keepdims", 1))
    if axes is None or axes.size == 0:
        if noop_if_empty:
            return _elementwise_part(ctx, x, mil_name)
        return getattr(ctx.mb, mil_name)(x=x, keep_dims=keep)
    rank = max(x.rank, 1)
    flat = [int(a) for a in axes.reshape(-1)]
    if any(not -rank <= a < rank for a in flat):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: axes {flat} out of range for rank {rank}; fix the model"
        )
    return getattr(ctx.mb, mil_name)(x=x, axes=np.array(flat, np.int32), keep_dims=keep)


def _register(onnx_name: str, mil_name: str, input_since: int, math: str) -> None:
    def with_attr(ctx: LowerContext, node: Node) -> Any:
        axes = node.attrs.get("axes")
        return _reduce(
            ctx, node, mil_name, None if axes is None else np.asarray(axes, np.int64), False
        )

    def with_input(ctx: LowerContext, node: Node) -> Any:
        axes = None
        if node.has_input(1):
            axes = node.const_input(1)
            if axes is None:
                raise UnsupportedOpError(
                    f"lower: {node.describe()}: axes computed at run time; MIL reductions need constant axes. "
                    "Make axes a constant (e.g. run onnxsim)"
                )
        return _reduce(ctx, node, mil_name, axes, bool(node.attrs.get("noop_with_empty_axes", 0)))

    for fn, since, where in ((with_attr, 1, "attribute"), (with_input, input_since, "input")):
        fn.__name__ = f"{mil_name}_v{since}"
        fn.__doc__ = f"y = {math} over axes (axes {where}; none given: all axes).  MIL: {mil_name}."
        onnx_op(onnx_name, since=since)(fn)


for _onnx, (_mil, _since, _math) in _REDUCTIONS.items():
    _register(_onnx, _mil, _since, _math)


def _arg(ctx: LowerContext, node: Node, mil_name: str) -> Any:
    """Index of the first (or, with select_last_index, last) extreme along axis, as int32.

    MIL's reduce_argmax/argmin return the first index of a tie; the last one is found on the
    input reversed along axis: last = dim - 1 - first_of_reversed (reverse, reduce_arg*, sub).
    """
    x = node.input(0)
    mb = ctx.mb
    rank = max(x.rank, 1)
    axis = int(node.attrs.get("axis", 0))
    if not -rank <= axis < rank:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: axis={axis} out of range for rank {rank}; fix the model"
        )
    axis %= rank
    keep = bool(node.attrs.get("keepdims", 1))
    reducer: Callable[..., Any] = getattr(mb, mil_name)
    if not int(node.attrs.get("select_last_index", 0)):
        return reducer(x=x, axis=axis, keep_dims=keep)
    first = reducer(x=mb.reverse(x=x, axes=[axis]), axis=axis, keep_dims=keep)
    dim = x.shape[axis]
    if isinstance(dim, int):
        last = np.int32(dim - 1)
    else:
        last = mb.sub(x=mb.gather(x=mb.shape(x=x), indices=np.int32(axis), axis=0), y=np.int32(1))
    return mb.sub(x=last, y=first)


@onnx_op("ArgMax", since=1)
def arg_max(ctx: LowerContext, node: Node) -> Any:
    """y = argmax(x) along axis (first index of ties; last with select_last_index).  MIL: reduce_argmax (+ reverse, sub for the last index)."""
    return _arg(ctx, node, "reduce_argmax")


@onnx_op("ArgMin", since=1)
def arg_min(ctx: LowerContext, node: Node) -> Any:
    """y = argmin(x) along axis (first index of ties; last with select_last_index).  MIL: reduce_argmin (+ reverse, sub for the last index)."""
    return _arg(ctx, node, "reduce_argmin")
