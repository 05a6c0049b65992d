"""Slicing and data-dependent selection: Slice, Compress, NonZero, ReverseSequence.

Spec changes read: Slice 1 (starts/ends/axes attributes), 10 (inputs, optional axes and steps,
negative steps), 11 (negative axes), 13 (types only); Compress 9, 11 (negative axis), 28 (types);
NonZero 9, 13 (types); ReverseSequence 10, 28 (types).

ONNX clamps slice bounds the way Python/numpy slicing does (start in ``[0, D]`` or ``[0, D-1]``
for negative steps, end in ``[0, D]`` or ``[-1, D-1]``), and MIL's ``slice_by_index`` follows
numpy with ``begin_mask``/``end_mask`` meaning "from the natural start"/"to the natural end" in
the stride's direction.  With static dims the bounds are resolved at conversion time; the
INT64_MAX / INT64_MIN sentinels (INT32 after legalization) become masks.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.dtypes import INT32_MAX, INT32_MIN
from pipeline.lowering.node import Node
from pipeline.lowering.ops.indexing import bool_as_int, const_ints, normalize_axis, static_dim
from pipeline.lowering.registry import composite_op, onnx_op

log = logging.getLogger(__name__)


def _resolve_start(start: int, step: int, dim: int | None) -> tuple[int, bool]:
    """(begin, begin_mask) of one axis; mask = start at the natural start in the step's direction."""
    if dim is None:
        at_edge = start <= INT32_MIN if step > 0 else start >= INT32_MAX
        return (0 if at_edge else start), at_edge
    lo, hi = (0, dim) if step > 0 else (0, dim - 1)
    start = min(max(start + dim if start < 0 else start, lo), hi)
    return start, (start == 0 if step > 0 else start == dim - 1)


def _resolve_end(end: int, step: int, dim: int | None) -> tuple[int, bool]:
    """(end, end_mask) of one axis; mask = run to the natural end in the step's direction."""
    if dim is None:
        at_edge = end >= INT32_MAX if step > 0 else end <= INT32_MIN
        return (0 if at_edge else end), at_edge
    lo, hi = (0, dim) if step > 0 else (-1, dim - 1)
    end = min(max(end + dim if end < 0 else end, lo), hi)
    return end, (end == dim if step > 0 else end == -1)


def _bound_vector(ctx: LowerContext, var: Any, axes: list[int], rank: int) -> Any:
    """A rank-long run-time begin/end vector: ``var``'s entries at ``axes``, 0 elsewhere (masked)."""
    var = ctx.cast(var, np.int32)
    if axes == list(range(rank)):
        return var
    # gather from [values..., 0]: axis a takes position axes.index(a), others the trailing 0.
    where = [axes.index(a) if a in axes else len(axes) for a in range(rank)]
    padded = ctx.mb.concat(values=[var, ctx.const(np.zeros(1, np.int32))], axis=0)
    return ctx.mb.gather(x=padded, indices=ctx.const(np.asarray(where, np.int32)), axis=0)


def _slice(
    ctx: LowerContext, node: Node, x: Any, starts: Any, ends: Any, axes: list[int] | None, steps: list[int] | None
) -> Any:
    """x[starts:ends:steps] on ``axes``; ``starts``/``ends`` are int lists or run-time MIL values."""
    rank = x.rank
    count = len(starts) if isinstance(starts, list) else len(ends) if isinstance(ends, list) else None
    if axes is None:
        if count is None:
            count = starts.shape[0]
        axes = list(range(count))
    axes = [normalize_axis(node, a, rank) for a in axes]
    steps = steps if steps is not None else [1] * len(axes)
    if len(set(axes)) != len(axes) or len(steps) != len(axes):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: axes {axes} repeat an axis or do not match steps {steps}; fix the model"
        )
    if any(s == 0 for s in steps):
        raise UnsupportedOpError(f"lower: {node.describe()}: a step of 0 is invalid in ONNX; fix the model")
    begin, end, stride = [0] * rank, [0] * rank, [1] * rank
    begin_mask, end_mask = [True] * rank, [True] * rank
    for k, axis in enumerate(axes):
        dim, step = static_dim(x, axis), steps[k]
        stride[axis] = step
        if isinstance(starts, list):
            begin[axis], begin_mask[axis] = _resolve_start(starts[k], step, dim)
        else:
            begin_mask[axis] = False
        if isinstance(ends, list):
            end[axis], end_mask[axis] = _resolve_end(ends[k], step, dim)
        else:
            end_mask[axis] = False
    if all(begin_mask) and all(end_mask) and all(s == 1 for s in stride):
        return x  # the whole tensor: no op at all
    begin_var = ctx.const(np.asarray(begin, np.int32)) if isinstance(starts, list) else _bound_vector(ctx, starts, axes, rank)
    end_var = ctx.const(np.asarray(end, np.int32)) if isinstance(ends, list) else _bound_vector(ctx, ends, axes, rank)
    kwargs: dict[str, Any] = {"x": x, "begin": begin_var, "end": end_var}
    if any(s != 1 for s in stride):
        kwargs["stride"] = np.asarray(stride, np.int32)
    if any(begin_mask):
        kwargs["begin_mask"] = np.asarray(begin_mask)
    if any(end_mask):
        kwargs["end_mask"] = np.asarray(end_mask)
    return ctx.mb.slice_by_index(**kwargs)


@onnx_op("Slice", since=1)
def slice_v1(ctx: LowerContext, node: Node) -> Any:
    """y = x[starts:ends] on ``axes`` (attributes).  MIL: slice_by_index (none when the slice is everything)."""
    axes = node.attr("axes")
    return _slice(ctx, node, node.input(0), list(node.attr("starts")), list(node.attr("ends")),
                  list(axes) if axes is not None else None, None)


@onnx_op("Slice", since=10)
def slice_v10(ctx: LowerContext, node: Node) -> Any:
    """y = x[starts:ends:steps] on ``axes`` (inputs).  MIL: slice_by_index, dynamic begin/end when run-time.

    Limits: ``axes`` and ``steps`` must be constants (MIL's stride is const); run-time starts/ends
    cost a concat + gather each when they cover only some axes.
    """
    starts: Any = node.const_input(1)
    ends: Any = node.const_input(2)
    starts = [int(v) for v in starts.reshape(-1)] if starts is not None else node.input(1)
    ends = [int(v) for v in ends.reshape(-1)] if ends is not None else node.input(2)
    axes = const_ints(node, 3, "axes")
    steps = const_ints(node, 4, "steps")
    return _slice(ctx, node, node.input(0), starts, ends, axes, steps)


@composite_op("Compress", since=9)
def compress(ctx: LowerContext, node: Node) -> Any:
    """y = x[condition] along ``axis`` (flattened x without axis).  MIL: gather of the true positions;
    run-time conditions: non_zero + reshape + gather.

    Composite: MIL has no boolean-mask select; gather is the one op whose output size follows a
    run-time index count.  Limits: an all-false constant condition (empty output) is rejected.
    """
    x, cond = node.input(0), node.input(1)
    axis = node.attr("axis") if node.has_attr("axis") else None
    if axis is None:
        x = ctx.mb.reshape(x=x, shape=np.asarray([-1], np.int32)) if x.rank != 1 else x
        axis = 0
    axis = normalize_axis(node, int(axis), x.rank)
    cond_val = node.const_input(1)
    if cond_val is not None:
        picked = np.flatnonzero(cond_val.reshape(-1)).astype(np.int32)
        if picked.size == 0:
            raise UnsupportedOpError(
                f"lower: {node.describe()}: the condition selects nothing and Core ML has no empty tensors; "
                "remove the node from the model"
            )
        indices = ctx.const(picked)
    else:
        positions = ctx.mb.non_zero(x=cond)  # [N, 1]
        indices = ctx.mb.reshape(x=positions, shape=np.asarray([-1], np.int32))
    return bool_as_int(ctx, x, lambda v: ctx.mb.gather(x=v, indices=indices, axis=axis))


@onnx_op("NonZero", since=9)
def non_zero(ctx: LowerContext, node: Node) -> Any:
    """y[:, n] = coordinates of the n-th non-zero element of x (row-major), shape [rank, N].

    MIL: non_zero ([N, rank]) + transpose; folded to a constant for constant x.
    Limits: a scalar x is rejected (its [0, N] output has no Core ML form).
    """
    x = node.input(0)
    val = node.const_input(0)
    if val is not None:
        return ctx.const(np.asarray(np.nonzero(val)).astype(np.int64))
    if x.rank == 0:
        raise UnsupportedOpError(f"lower: {node.describe()}: NonZero of a scalar has no Core ML form; reshape x to [1]")
    coords = ctx.mb.non_zero(x=x)
    return ctx.mb.transpose(x=coords, perm=[1, 0])


@onnx_op("ReverseSequence", since=10)
def reverse_sequence(ctx: LowerContext, node: Node) -> Any:
    """y[b, :len[b]] = reversed x[b, :len[b]] along time_axis; the rest is copied.  MIL: reverse_sequence."""
    x, lengths = node.input(0), node.input(1)
    return ctx.mb.reverse_sequence(
        x=x,
        lengths=ctx.cast(lengths, np.int32),
        seq_axis=int(node.attr("time_axis")),
        batch_axis=int(node.attr("batch_axis")),
    )
