"""Pass ``fuse_softmax``: written-out softmax -> ``Softmax``.

Ops: ``e = Exp(x - ReduceMax(x, [a]))`` or ``e = Exp(x)``, then ``e / ReduceSum(e, [a])``
(keepdims=1 on both reductions) -> ``Softmax(x, axis=a)``.  The unshifted form overflows to
inf/nan for large x where Softmax does not; fusing it only removes that failure.

Opsets: from 13 Softmax normalizes along one axis, any a qualifies.  Before 13 it flattens the
input to 2-D at ``axis`` and normalizes the trailing block, which equals the per-axis form only
when a is the last axis, so only that case is fused there.  Axes come from the attribute
(ReduceSum < 13, ReduceMax < 18) or from a constant input.
"""

from __future__ import annotations

import logging

import onnx_ir as ir
from onnxscript.rewriter import pattern

from rewrites._util import (
    FLOAT_TYPES,
    apply_rules,
    ensure_types,
    fusion_rule,
    keepdims,
    opset,
    rank_of,
    reduce_axes,
)
from rewrites.manager import register_pass

logger = logging.getLogger(__name__)

SOFTMAX_ONE_AXIS_SINCE = 13


def _exp(op, x):  # type: ignore[no-untyped-def]
    peak = op.ReduceMax(x, _allow_other_inputs=True, _allow_other_attributes=True,
                        _outputs=["peak"])
    return pattern.OrValue([op.Exp(op.Sub(x, peak)), op.Exp(x)])


def _target(op, x):  # type: ignore[no-untyped-def]
    e = _exp(op, x)
    total = op.ReduceSum(e, _allow_other_inputs=True, _allow_other_attributes=True,
                         _outputs=["total"])
    return op.Div(e, total)


def _single_axis(node: ir.Node | None, rank: int | None) -> int | None:
    """The one axis a keepdims reduction reduces, normalized to negative when rank is known."""
    if node is None or not keepdims(node):
        return None
    axes = reduce_axes(node)
    if axes is None or len(axes) != 1:
        return None
    axis = axes[0]
    return axis - rank if rank is not None and axis >= 0 else axis


def _softmax_axis(context, x: ir.Value, total: ir.Value,  # type: ignore[no-untyped-def]
                  peak: ir.Value | None = None) -> int | None:
    rank = rank_of(x)
    axis = _single_axis(total.producer(), rank)
    if axis is None:
        return None
    if peak is not None and _single_axis(peak.producer(), rank) != axis:
        return None
    if opset(context.model) < SOFTMAX_ONE_AXIS_SINCE and axis not in (-1,):
        return None
    return axis


def _check(context, x: ir.Value, total: ir.Value, peak: ir.Value | None = None,  # type: ignore[no-untyped-def]
           **_: object) -> bool:
    """x is floating point; both reductions keep dims over the same single axis."""
    return x.dtype in FLOAT_TYPES and _softmax_axis(context, x, total, peak) is not None


def _fused(op, x, total, **_):  # type: ignore[no-untyped-def]
    node = total.producer()
    axis = _single_axis(node, rank_of(x))
    return op.Softmax(x, axis=axis)


_RULES = [fusion_rule(_target, _fused, _check, "softmax")]


@register_pass(
    "fuse_softmax",
    "fuse Exp/ReduceSum/Div (and the max-subtracted form) into Softmax",
    user=False,
)
def fuse_softmax(model: ir.Model) -> bool:
    """exp(x - max x) / sum exp(x - max x) -> Softmax(x, axis)."""
    ensure_types(model)
    return apply_rules(model, _RULES) > 0
