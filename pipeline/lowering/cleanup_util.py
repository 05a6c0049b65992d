"""Helpers shared by the MIL clean-up passes (``cleanup_*.py``): block walks, use checks, shapes."""

from __future__ import annotations

from typing import Any

from coremltools.converters.mil.mil.types.symbolic import any_symbolic


def all_blocks(block: Any) -> list[Any]:
    """``block`` and every block nested in its ops."""
    found = [block]
    for op in block.operations:
        for inner in op.blocks:
            found.extend(all_blocks(inner))
    return found


def sole_use(var: Any, block: Any) -> bool:
    """``var`` feeds exactly one op and is not an output of ``block``."""
    return len(var.child_ops) == 1 and not any(v is var for v in block.outputs)


def static_shape_of(var: Any) -> tuple[int, ...] | None:
    """The shape of ``var`` as ints, or None when unknown or symbolic."""
    shape = var.shape
    if shape is None or any_symbolic(shape):
        return None
    return tuple(int(d) for d in shape)
