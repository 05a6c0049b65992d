"""Cumulative product: CumProd.

MIL has ``cumsum`` but no cumulative product, and ``exp(cumsum(log|x|))`` is neither exact for
integers nor defined at zeros and negatives.  The product is built instead by a Hillis-Steele
scan: ``ceil(log2 n)`` rounds of ``y = y * shift(y, d)`` for d = 1, 2, 4, ..., where ``shift``
moves the axis by ``d`` and fills with ones (``slice_by_index`` + ``concat`` of a ones block).
Each output is a balanced product tree of depth ``log2 n``, so float rounding error grows with
``log2 n`` rather than ``n``; integer products are exact (wrapping as int32 does).

Spec read: CumProd 26 (introduced; exclusive and reverse attributes, axis input).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.ops.indexing import const_ints, normalize_axis, static_dim, static_shape
from pipeline.lowering.registry import composite_op

log = logging.getLogger(__name__)


def _ones_block(ctx: LowerContext, y: Any, axis: int, d: int, reverse: bool) -> Any:
    """A block of ones shaped like ``d`` entries of ``y`` along ``axis``."""
    shape = static_shape(y)
    if shape is not None:
        block = list(shape)
        block[axis] = d
        return ctx.const(np.ones(block, dtype=ctx.np_dtype(y)))
    ctx.require_target(16, "CumProd on a tensor with run-time dimensions fills its ones with fill_like")
    part = _take(ctx, y, axis, d, from_end=reverse)
    return ctx.mb.fill_like(ref_tensor=part, value=ctx.scalar_like(y, 1))


def _take(ctx: LowerContext, y: Any, axis: int, count: int, *, from_end: bool) -> Any:
    """The first (or last) ``count`` entries of ``y`` along ``axis``."""
    rank = y.rank
    begin = [0] * rank
    end = [0] * rank
    end_mask = [True] * rank
    if from_end:
        begin[axis] = -count
    else:
        end[axis] = count
        end_mask[axis] = False
    return ctx.mb.slice_by_index(x=y, begin=begin, end=end, end_mask=end_mask)


def _shift(ctx: LowerContext, y: Any, axis: int, n: int, d: int, reverse: bool) -> Any:
    """y moved ``d`` places along ``axis`` (towards the end, or the start when reverse), ones in."""
    kept = _take(ctx, y, axis, n - d, from_end=reverse)
    ones = _ones_block(ctx, y, axis, d, reverse)
    parts = [kept, ones] if reverse else [ones, kept]
    return ctx.mb.concat(values=parts, axis=axis)


@composite_op("CumProd", since=26)
def cum_prod(ctx: LowerContext, node: Node) -> Any:
    """y[i] = prod of x[j] for j <= i (j < i if exclusive; j >= i / j > i if reverse) along axis.

    MIL: ceil(log2 n) rounds of slice_by_index + concat (ones) + mul, one more shift when
    exclusive; a length-1 axis costs no op.  A log/exp composite would cost 4 ops but fails at
    zeros and negatives and rounds integers, so the exact scan is preferred.
    Limits: the axis input must be a constant and the axis length static.
    """
    x = node.input(0)
    axis_vals = const_ints(node, 1, "axis")
    if axis_vals is None or len(axis_vals) != 1:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: axis must be a constant one-element tensor; fold it before converting"
        )
    axis = normalize_axis(node, axis_vals[0], x.rank)
    n = static_dim(x, axis)
    if n is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: the length of axis {axis} is only known at run time; the "
            "cumulative-product scan needs it static (fix the input shape with --input)"
        )
    reverse = bool(node.attrs.get("reverse", 0))
    y = x
    if bool(node.attrs.get("exclusive", 0)) and n > 0:
        y = _shift(ctx, y, axis, n, 1, reverse)
    d = 1
    while d < n:
        y = ctx.mb.mul(x=y, y=_shift(ctx, y, axis, n, d, reverse))
        d *= 2
    return y  # x itself for a length-1 axis: the driver aliases it, as for Identity
