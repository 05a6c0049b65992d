"""Helpers shared by the MIL clean-up passes (``cleanup_*.py``): block walks, use checks, shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from coremltools.converters.mil.mil.types.symbolic import any_symbolic


def all_blocks(block: Any) -> list[Any]:
    """``block`` and every block nested in its ops."""
    found = [block]
    for op in block.operations:
        for inner in op.blocks:
            found.extend(all_blocks(inner))
    return found


def program_blocks(program: Any) -> Iterator[Any]:
    """Every block of every function of ``program``, nested blocks included."""
    for func in program.functions.values():
        yield from all_blocks(func)


def ops_of_type(program: Any, op_type: str) -> Iterator[tuple[Any, Any]]:
    """(block, op) for each ``op_type`` op; each block's ops are listed before any is yielded,
    so a pass may rewrite the block while iterating."""
    for block in program_blocks(program):
        for op in list(block.operations):
            if op.op_type == op_type:
                yield block, op


def sole_use(var: Any, block: Any) -> bool:
    """``var`` feeds exactly one op and is not an output of ``block``."""
    return len(var.child_ops) == 1 and not any(v is var for v in block.outputs)


def static_shape_of(var: Any) -> tuple[int, ...] | None:
    """The shape of ``var`` as ints, or None when unknown or symbolic."""
    shape = var.shape
    if shape is None or any_symbolic(shape):
        return None
    return tuple(int(d) for d in shape)
