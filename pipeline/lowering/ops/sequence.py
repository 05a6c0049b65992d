"""Sequence ops: SequenceEmpty, SequenceConstruct, SequenceAt, SequenceInsert, SequenceErase,
SequenceLength, SplitToSequence, ConcatFromSequence.

Sequences that live only inside a graph (the I/O adapter rejects sequence inputs and outputs)
are tracked at conversion time as a :class:`Sequence` of MIL tensors: building, indexing and
editing them costs no MIL op, and only ConcatFromSequence / SplitToSequence (and SequenceAt at a
run-time position) emit ``concat`` / ``stack`` / ``split`` / ``gather``.  This is leaner than MIL
lists, which Core ML runs on the CPU only; a sequence whose length depends on run-time values
(carried through a Loop) is not supported.

Spec changes read: all eight ops 11 (introduced); SplitToSequence 11 only; SequenceAt/Insert/
Erase/Construct/Empty/Length 11 (types widened later, no semantic change); ConcatFromSequence 11.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.dtypes import legal_numpy
from pipeline.lowering.node import Node
from pipeline.lowering.registry import onnx_op

log = logging.getLogger(__name__)


class Sequence:
    """An ONNX sequence whose elements (MIL tensors) are known at conversion time.

    ``op`` is None so the driver binds it as a value without naming it (it is no MIL value).
    """

    op = None

    def __init__(self, items: list[Any], dtype: np.dtype | None = None) -> None:
        self.items = list(items)
        self.dtype = dtype

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"Sequence(len={len(self.items)})"


def _seq(node: Node, i: int = 0) -> Sequence:
    value = node.input(i)
    if not isinstance(value, Sequence):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: input {i} is not a sequence built in this graph; only "
            "sequences created inside the model (SequenceConstruct, SplitToSequence, ...) are supported"
        )
    return value


def _position(ctx: LowerContext, node: Node, i: int, length: int, *, insert: bool = False) -> int | None:
    """Input ``i`` as a position in [0, length] (None when omitted); must be a constant."""
    if not node.has_input(i):
        return None
    val = ctx.value_of(node.input(i))
    if val is None:
        return None
    pos = int(np.asarray(val).reshape(-1)[0])
    hi = length if insert else length - 1
    if not -length <= pos <= hi:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: position {pos} is out of range for a sequence of {length}; fix the model"
        )
    return pos + length if pos < 0 else pos


@onnx_op("SequenceEmpty", since=11)
def sequence_empty(ctx: LowerContext, node: Node) -> Any:
    """seq = [] of element type ``dtype``.  MIL: nothing (tracked at conversion time)."""
    return Sequence([], legal_numpy(int(node.attrs.get("dtype", 1))))


@onnx_op("SequenceConstruct", since=11)
def sequence_construct(ctx: LowerContext, node: Node) -> Any:
    """seq = [x0, x1, ...].  MIL: nothing (tracked at conversion time)."""
    return Sequence(list(node.inputs), ctx.np_dtype(node.input(0)))


@onnx_op("SequenceLength", since=11)
def sequence_length(ctx: LowerContext, node: Node) -> Any:
    """n = len(seq) as an int64 scalar.  MIL: a constant."""
    return ctx.const(np.array(len(_seq(node)), np.int64))


@onnx_op("SequenceAt", since=11)
def sequence_at(ctx: LowerContext, node: Node) -> Any:
    """y = seq[position] (negative counts from the end).  MIL: nothing for a constant position,
    else stack + gather.

    Limits: a run-time position needs elements of one shape.
    """
    seq = _seq(node)
    pos = _position(ctx, node, 1, len(seq))
    if pos is not None:
        return seq.items[pos]
    shapes = {tuple(v.shape) for v in seq.items}
    if len(shapes) != 1:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: a run-time position into elements of different shapes "
            f"({sorted(shapes)}) has no MIL form; make the position a constant"
        )
    mb = ctx.mb
    index = mb.reshape(x=ctx.cast(node.input(1), np.int32), shape=[1]) if node.input(1).rank else ctx.cast(node.input(1), np.int32)
    # Negative positions count from the end: index + n * (index < 0).
    n = np.int32(len(seq))
    index = mb.select(cond=mb.less(x=index, y=np.int32(0)), a=mb.add(x=index, y=n), b=index)
    stacked = mb.stack(values=seq.items, axis=0)
    out = mb.gather(x=stacked, indices=index, axis=0)
    return mb.squeeze(x=out, axes=[0]) if out.rank > seq.items[0].rank else out


@onnx_op("SequenceInsert", since=11)
def sequence_insert(ctx: LowerContext, node: Node) -> Any:
    """seq' = seq[:p] + [tensor] + seq[p:] (p defaults to the end).  MIL: nothing.

    Limits: the position must be a constant.
    """
    seq = _seq(node)
    if node.has_input(2) and ctx.value_of(node.input(2)) is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: the insert position is computed at run time; make it a constant"
        )
    pos = _position(ctx, node, 2, len(seq), insert=True)
    items = list(seq.items)
    items.insert(len(items) if pos is None else pos, node.input(1))
    return Sequence(items, seq.dtype or ctx.np_dtype(node.input(1)))


@onnx_op("SequenceErase", since=11)
def sequence_erase(ctx: LowerContext, node: Node) -> Any:
    """seq' = seq without element p (p defaults to the last).  MIL: nothing.

    Limits: the position must be a constant.
    """
    seq = _seq(node)
    if node.has_input(1) and ctx.value_of(node.input(1)) is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: the erase position is computed at run time; make it a constant"
        )
    pos = _position(ctx, node, 1, len(seq))
    items = list(seq.items)
    del items[len(items) - 1 if pos is None else pos]
    return Sequence(items, seq.dtype)


@onnx_op("SplitToSequence", since=11)
def split_to_sequence(ctx: LowerContext, node: Node) -> Any:
    """seq = split(x, split or ones, axis) (keepdims=0 squeezes size-1 pieces).  MIL: split.

    Limits: the split sizes and the size of ``axis`` must be known at conversion time.
    """
    mb, x = ctx.mb, node.input(0)
    axis = int(node.attrs.get("axis", 0)) % x.rank
    dim = x.shape[axis]
    if not isinstance(dim, (int, np.integer)):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: the split axis has a run-time size; give the model a fixed "
            "size on that axis (--shapes)"
        )
    split = None if not node.has_input(1) else ctx.value_of(node.input(1))
    if node.has_input(1) and split is None:
        raise UnsupportedOpError(f"lower: {node.describe()}: split sizes computed at run time; make them constant")
    if split is None:
        sizes = [1] * int(dim)
    elif split.ndim == 0:
        chunk = int(split)
        sizes = [chunk] * (int(dim) // chunk) + ([int(dim) % chunk] if int(dim) % chunk else [])
    else:
        sizes = [int(s) for s in split.reshape(-1)]
    pieces = [x] if len(sizes) == 1 else list(mb.split(x=x, split_sizes=np.array(sizes, np.int32), axis=axis))
    if split is None and not int(node.attrs.get("keepdims", 1)):
        pieces = [mb.squeeze(x=p, axes=[axis]) for p in pieces]
    return Sequence(pieces, ctx.np_dtype(x))


@onnx_op("ConcatFromSequence", since=11)
def concat_from_sequence(ctx: LowerContext, node: Node) -> Any:
    """y = concat(seq, axis), or stack(seq, axis) with new_axis=1.  MIL: concat / stack."""
    seq = _seq(node)
    if not seq.items:
        raise UnsupportedOpError(f"lower: {node.describe()}: concatenating an empty sequence; ONNX leaves it undefined")
    new_axis = bool(node.attrs.get("new_axis", 0))
    rank = seq.items[0].rank + (1 if new_axis else 0)
    axis = int(node.attrs["axis"]) % rank
    if len(seq.items) == 1:
        return ctx.mb.expand_dims(x=seq.items[0], axes=[axis]) if new_axis else ctx.mb.identity(x=seq.items[0])
    if new_axis:
        return ctx.mb.stack(values=seq.items, axis=axis)
    return ctx.mb.concat(values=seq.items, axis=axis)
