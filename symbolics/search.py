"""Sorted search: aten::searchsorted.

Found by trying (torch 2.14.1, opset 18): both exporters fail (TorchScript:
``UnsupportedOperatorError: Exporting the operator 'aten::searchsorted' to ONNX opset version 18
is not supported``; dynamo: ``ConversionError`` on ``aten.searchsorted.Tensor``).
``aten::bucketize`` exports with both already; not covered.

For a sorted sequence the insertion index is a count, exact in standard ops:
``left: i = #{m : s[m] < v}``, ``right: i = #{m : s[m] <= v}``.
"""

from __future__ import annotations

from typing import Any

from symbolics._common import builtin, const, legacy_ints, op


def _right(right: Any, side: Any) -> bool:
    """torch: side='right' or right=True picks the upper insertion point."""
    return bool(right) or side == "right"


def _searchsorted_legacy(
    g: Any, sorted_sequence: Any, input: Any, out_int32: Any, right: Any, side: Any,
    sorter: Any,
) -> Any:
    seq = sorted_sequence
    if const(sorter, "t") is not None:
        seq = g.op("GatherElements", seq, sorter, axis_i=-1)
    rank = sorted_sequence.type().dim()
    if rank is not None and rank > 1:
        seq = g.op("Unsqueeze", seq, legacy_ints(g, [-2]))
    value = g.op("Unsqueeze", input, legacy_ints(g, [-1]))
    cmp = "LessOrEqual" if _right(const(right, "b"), const(side, "s")) else "Less"
    hits = g.op("Cast", g.op(cmp, seq, value), to_i=7)
    count = g.op("ReduceSum", hits, legacy_ints(g, [-1]), keepdims_i=0)
    return g.op("Cast", count, to_i=6) if const(out_int32, "b") else count


@builtin("aten::searchsorted", opset=18, legacy=_searchsorted_legacy,
         targets=("aten::searchsorted.Tensor",))
def searchsorted(
    sorted_sequence: Any, input: Any, *, out_int32: bool = False, right: bool = False,
    side: str | None = None, sorter: Any = None,
) -> Any:
    """i = #{m : s[..., m] < v} (left) or <= v (right), s sorted along its last axis."""
    seq = sorted_sequence
    if sorter is not None:
        seq = op.GatherElements(seq, sorter, axis=-1)
    shape = getattr(sorted_sequence, "shape", None)
    if shape is not None and len(shape) > 1:
        seq = op.Unsqueeze(seq, [-2])
    value = op.Unsqueeze(input, [-1])
    hits = (op.LessOrEqual if _right(right, side) else op.Less)(seq, value)
    count = op.ReduceSum(op.Cast(hits, to=7), [-1], keepdims=0)
    return op.Cast(count, to=6) if out_int32 else count
