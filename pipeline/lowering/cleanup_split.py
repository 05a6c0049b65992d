"""MIL clean-up of slices that tile one axis: ``split``.

``split_tiling_slices``: exporters write ``unbind`` / ``chunk`` as one ``slice_by_index`` per
piece.  When slices of the same tensor, unit-stride and full on every other axis, cover one axis
exactly (back to back, no overlap), they are the outputs of one ``split`` with those sizes.
"""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict
from typing import Any

import numpy as np
from coremltools.converters.mil import Builder as mb

from pipeline.lowering.cleanup_util import program_blocks, static_shape_of

log = logging.getLogger(__name__)


def _flag(op: Any, name: str, rank: int) -> list[bool]:
    var = op.inputs.get(name)
    return [False] * rank if var is None or var.val is None else [bool(b) for b in var.val]


def _range_on_axis(op: Any, shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """(axis, start, stop) when ``op`` cuts one axis with unit stride and keeps every other whole."""
    rank = len(shape)
    begin, end = op.inputs["begin"].val, op.inputs["end"].val
    if begin is None or end is None or len(begin) != rank or len(end) != rank:
        return None
    stride = op.inputs.get("stride")
    if stride is not None and (stride.val is None or any(int(s) != 1 for s in stride.val)):
        return None
    if any(_flag(op, "squeeze_mask", rank)):
        return None
    begin_mask, end_mask = _flag(op, "begin_mask", rank), _flag(op, "end_mask", rank)
    cut = []
    for k, dim in enumerate(shape):
        start = 0 if begin_mask[k] else int(begin[k]) + (dim if int(begin[k]) < 0 else 0)
        stop = dim if end_mask[k] else int(end[k]) + (dim if int(end[k]) < 0 else 0)
        start, stop = max(0, min(start, dim)), max(0, min(stop, dim))
        if (start, stop) != (0, dim):
            cut.append((k, start, stop))
    if len(cut) != 1 or cut[0][2] <= cut[0][1]:
        return None
    axis, start, stop = cut[0]
    out = static_shape_of(op.outputs[0])
    expected = tuple(stop - start if k == axis else d for k, d in enumerate(shape))
    return (axis, start, stop) if out == expected else None


def split_tiling_slices(program: Any) -> int:
    """slice_by_index pieces tiling an axis -> one split; returns ops saved."""
    saved = 0
    for block in program_blocks(program):
        order = {id(op): i for i, op in enumerate(block.operations)}
        groups: dict[tuple[int, int], list[tuple[int, int, Any]]] = defaultdict(list)
        for op in block.operations:
            if op.op_type != "slice_by_index":
                continue
            shape = static_shape_of(op.inputs["x"])
            found = _range_on_axis(op, shape) if shape else None
            if found is not None:
                axis, start, stop = found
                groups[(id(op.inputs["x"]), axis)].append((start, stop, op))
        for (_, axis), pieces in groups.items():
            saved += _replace(block, axis, pieces, order)
    if saved:
        log.debug("split_tiling_slices saved %d ops", saved)
    return saved


def _replace(block: Any, axis: int, pieces: list[tuple[int, int, Any]], order: dict[int, int]) -> int:
    pieces = sorted(pieces, key=lambda p: (p[0], p[1]))
    x = pieces[0][2].inputs["x"]
    dim = int(x.shape[axis])
    if len(pieces) < 2 or pieces[0][0] != 0 or pieces[-1][1] != dim:
        return 0
    if any(a[1] != b[0] for a, b in itertools.pairwise(pieces)):
        return 0
    first = min((p[2] for p in pieces), key=lambda op: order[id(op)])
    sizes = np.asarray([stop - start for start, stop, _ in pieces], np.int32)
    with block, mb.set_before_op(first):
        outs = mb.split(x=x, split_sizes=sizes, axis=axis, name=f"{pieces[0][2].name}__split")
    for (_, _, op), new in zip(pieces, outs):
        old = op.outputs[0]
        name = old.name
        old.name = f"{name}__replaced"
        block.replace_uses_of_var_after_op(anchor_op=op, old_var=old, new_var=new)
        new.name = name
    block.remove_ops([p[2] for p in pieces])
    return len(pieces) - 1
