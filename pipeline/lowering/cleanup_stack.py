"""MIL clean-up of ``concat`` over freshly expanded values: ``stack``.

``stack_expanded_concats``: ``concat([expand_dims(x_i, axes=[k]) ...], axis=k)`` is
``stack([x_i ...], axis=k)`` element for element (an LSTM's per-layer ``Y_h`` / ``Y_c`` get a
``num_directions`` axis each, then are concatenated along it).
"""

from __future__ import annotations

import logging
from typing import Any

from coremltools.converters.mil import Builder as mb

from pipeline.lowering.cleanup_util import ops_of_type, sole_use

log = logging.getLogger(__name__)


def _expanded_on(var: Any, axis: int, block: Any) -> Any | None:
    """``x`` when ``var = expand_dims(x, axes=[axis])`` (axis of the result) is used once."""
    op = var.op
    if op is None or op.op_type != "expand_dims" or not sole_use(var, block):
        return None
    axes = op.inputs["axes"].val
    if axes is None or len(axes) != 1 or var.rank is None:
        return None
    return op.inputs["x"] if int(axes[0]) % var.rank == axis else None


def stack_expanded_concats(program: Any) -> int:
    """concat(expand_dims(x_i, k)..., axis=k) -> stack(x_i..., axis=k); returns ops saved."""
    saved = 0
    for block, op in ops_of_type(program, "concat"):
        if op.inputs["axis"].val is None:
            continue
        interleave = op.inputs.get("interleave")
        if interleave is not None and bool(interleave.val):
            continue
        values = list(op.inputs["values"])
        out = op.outputs[0]
        if len(values) < 2 or out.rank is None or len({id(v) for v in values}) != len(values):
            continue
        axis = int(op.inputs["axis"].val) % out.rank
        sources = [_expanded_on(v, axis, block) for v in values]
        if any(s is None for s in sources):
            continue
        name = out.name
        with block, mb.set_before_op(op):
            stacked = mb.stack(values=sources, axis=axis, name=f"{name}__stack")
        out.name = f"{name}__replaced"
        block.replace_uses_of_var_after_op(anchor_op=op, old_var=out, new_var=stacked)
        block.remove_ops([op] + [v.op for v in values])
        stacked.name = name
        saved += len(values)  # n expand_dims + concat became one stack
    if saved:
        log.debug("stack_expanded_concats saved %d ops", saved)
    return saved
