"""SequenceMap: a subgraph applied to every element of conversion-time sequences.

Sequences are tracked at conversion time (``ops/sequence.py``), so their lengths are known: the
body is lowered once per element in the enclosing block (unrolled), each copy reading element
``i`` of every sequence input and the whole of every tensor input.  Unrolling costs the body's
op count per element but no loop or MIL list, which Core ML runs on the CPU only; the copies
are independent, so the runtime may schedule them in parallel.

Spec read: SequenceMap 17 (introduced; the first input is a sequence, additional inputs are
sequences of the same length or tensors; every output is a sequence).
"""

from __future__ import annotations

import logging
from typing import Any

import onnx
from coremltools.converters.mil.mil.block import curr_block

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.ops.sequence import Sequence
from pipeline.lowering.registry import composite_op

log = logging.getLogger(__name__)


def _block_ops() -> list[Any]:
    return list(curr_block().operations)


def _suffix_new_values(ctx: LowerContext, before: set[int], suffix: str) -> None:
    """Give the values the last body copy created unique names (``name__mapI``).

    The driver names values after the body's ONNX tensors, which repeat in every copy.
    """
    for op in _block_ops():
        if id(op) in before:
            continue
        for out in op.outputs:
            if out.name and not out.name.endswith(suffix):
                out.name = f"{out.name}{suffix}"
        if op.name and not op.name.endswith(suffix):
            op.name = f"{op.name}{suffix}"


@composite_op("SequenceMap", since=17)
def sequence_map(ctx: LowerContext, node: Node) -> Any:
    """out_k[i] = body(seq[i], extra_1[i] or extra_1, ...)_k for i < len(seq).

    MIL: the body's ops once per element (unrolled); nothing else.
    Limits: the input sequences must be built in this graph (their lengths known at conversion).
    """
    body: onnx.GraphProto = node.attrs["body"]
    values = list(node.inputs)
    if not values or not isinstance(values[0], Sequence):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: input 0 is not a sequence built in this graph; only "
            "sequences created inside the model (SequenceConstruct, SplitToSequence, ...) are supported"
        )
    length = len(values[0])
    for j, value in enumerate(values[1:], start=1):
        if isinstance(value, Sequence) and len(value) != length:
            raise UnsupportedOpError(
                f"lower: {node.describe()}: sequence input {j} has {len(value)} elements, input 0 "
                f"has {length}; SequenceMap needs equal lengths (fix the model)"
            )
    names = [i.name for i in body.input]
    if len(names) != len(values):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: the body takes {len(names)} inputs for {len(values)} node inputs; fix the model"
        )
    collected: list[list[Any]] = [[] for _ in body.output]
    for i in range(length):
        bindings = {
            name: value.items[i] if isinstance(value, Sequence) else value for name, value in zip(names, values)
        }
        before = {id(op) for op in _block_ops()}
        results = ctx.lower_subgraph(body, bindings)
        _suffix_new_values(ctx, before, f"__map{i}")
        for k, result in enumerate(results):
            collected[k].append(result)
    return tuple(Sequence(items, ctx.np_dtype(items[0]) if items else None) for items in collected)
