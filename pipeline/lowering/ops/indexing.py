"""Helpers shared by the slicing, gather/scatter and sorting handlers (no ops registered here).

ONNX index inputs may be negative (counted from the end of the indexed dimension).  MIL's
gather/scatter family accepts ``-D <= i < D`` up to iOS16; from iOS17 negative indices are out of
bounds, so they are wrapped first: at conversion time when the indices are constant, else with one
``mod`` (floor modulo by the dimension size maps ``[-D, D)`` onto ``[0, D)`` exactly).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node

log = logging.getLogger(__name__)

#: First iOS opset whose gather/scatter ops reject negative indices.
NEGATIVE_INDEX_UNSUPPORTED_FROM = 17


def normalize_axis(node: Node, axis: int, rank: int) -> int:
    """``axis`` in ``[0, rank)``; ONNX allows ``[-rank, rank)``."""
    if not -rank <= axis < rank:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: axis {axis} is outside [-{rank}, {rank}) for a rank-{rank} "
            "input; fix the model's axis attribute"
        )
    return axis + rank if axis < 0 else axis


def static_dim(var: Any, axis: int) -> int | None:
    """The size of ``var``'s dimension ``axis`` when known at conversion time, else None."""
    dim = var.shape[axis]
    return int(dim) if isinstance(dim, (int, np.integer)) else None


def static_shape(var: Any) -> tuple[int, ...] | None:
    """``var``'s shape when every dimension is known, else None."""
    dims = [static_dim(var, i) for i in range(var.rank)]
    return None if any(d is None for d in dims) else tuple(int(d) for d in dims)  # type: ignore[arg-type]


def const_ints(node: Node, i: int, what: str) -> list[int] | None:
    """Input ``i`` as a list of ints when it is a constant; None when omitted.

    Raises UnsupportedOpError when the input is given but computed at run time.
    """
    if node.input(i) is None:
        return None
    val = node.const_input(i)
    if val is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: input {i} ({what}) is computed at run time, but Core ML "
            f"needs it constant; fold it first (onnxsim) or fix the {what} in the model"
        )
    return [int(v) for v in np.asarray(val).reshape(-1)]


def dim_sizes(ctx: LowerContext, data: Any, axes: list[int]) -> Any:
    """Sizes of ``data``'s dims ``axes``: a numpy int32 array when static, else a MIL value
    (a scalar for one axis)."""
    dims = [static_dim(data, a) for a in axes]
    if all(d is not None for d in dims):
        return np.asarray(dims, dtype=np.int32)
    shape = ctx.mb.shape(x=data)
    # One axis: a scalar index gives the scalar size directly (no squeeze afterwards).
    where = np.int32(axes[0]) if len(axes) == 1 else np.asarray(axes, np.int32)
    return ctx.mb.gather(x=shape, indices=ctx.const(where), axis=0)


def wrap_indices(ctx: LowerContext, indices: Any, data: Any, axes: list[int], *, guarded: bool = False) -> Any:
    """Indices into ``data``'s dims ``axes`` (the last index axis when several) made non-negative.

    Constant indices are wrapped at conversion time when the dims are static.  Run-time indices
    are left alone where MIL accepts negative ones (before iOS17) or where ``guarded`` (gather and
    gather_nd: coremltools' ``guard_negative_gather_indices`` pass wraps them at iOS17+ anyway, so
    a ``mod`` here would only add an op); else ``mod(indices, dims)``.
    """
    val = ctx.value_of(indices)
    needs_runtime = ctx.target >= NEGATIVE_INDEX_UNSUPPORTED_FROM and not guarded
    dims = dim_sizes(ctx, data, axes) if val is not None or needs_runtime else None
    if val is not None and isinstance(dims, np.ndarray):
        wrapped = np.where(val < 0, val + (dims.reshape(()) if len(axes) == 1 else dims), val).astype(np.int32)
        return ctx.const(wrapped) if not np.array_equal(wrapped, val) else indices
    if not needs_runtime:
        return indices
    size = ctx.const(dims.reshape(()) if len(axes) == 1 else dims) if isinstance(dims, np.ndarray) else dims
    return ctx.mb.mod(x=indices, y=size)


def bool_as_int(ctx: LowerContext, var: Any, build: Callable[[Any], Any]) -> Any:
    """``build(var)`` for an int32 view of a bool ``var`` (MIL's gather/scatter take no bools), cast back."""
    if ctx.np_dtype(var) != np.bool_:
        return build(var)
    out = build(ctx.cast(var, np.int32))
    return ctx.cast(out, np.bool_)
