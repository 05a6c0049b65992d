"""MIL clean-up of the flatten / unflatten reshapes around row-wise ``linear`` chains.

``unflatten_linear_chains``: exporters write ``x (..., K) -> reshape (P, K) -> linear -> relu ->
linear -> reshape (..., M)`` (``addmm`` needs 2-D operands).  MIL's ``linear`` takes any rank
and maps each row on its own, as do unary activations, so the chain is rebuilt on ``x``
directly and both reshapes go: the same rows meet the same ops.
"""

from __future__ import annotations

import logging
from typing import Any

from coremltools.converters.mil import Builder as mb

from pipeline.lowering.cleanup_util import program_blocks, sole_use, static_shape_of

log = logging.getLogger(__name__)

#: Ops acting on each row of their ``x`` alone (their other inputs are constants).
_ROW_WISE = {"linear", "relu", "gelu", "sigmoid", "tanh", "silu", "erf", "elu", "leaky_relu",
             "softplus", "sigmoid_hard", "clamped_relu", "thresholded_relu", "scaled_tanh"}


def _row_chain(start: Any, block: Any) -> tuple[list[Any], Any] | None:
    """Row-wise ops fed in a line from ``start`` and the reshape that ends them."""
    chain: list[Any] = []
    var = start
    while sole_use(var, block):
        op = var.child_ops[0]
        if op.op_type == "reshape" and op.inputs["x"] is var:
            return (chain, op) if chain else None
        if op.op_type not in _ROW_WISE or op.inputs["x"] is not var or len(op.outputs) != 1:
            return None
        if any(v.val is None for k, v in op.inputs.items() if k != "x"):
            return None
        chain.append(op)
        var = op.outputs[0]
    return None


def unflatten_linear_chains(program: Any) -> int:
    """reshape(x, (P, K)) -> row-wise ops -> reshape((..., M)) becomes the ops on x; ops saved."""
    saved = 0
    for block in program_blocks(program):
        removed: set[int] = set()
        for op in list(block.operations):
            if op.op_type != "reshape" or id(op) in removed:
                continue
            x, flat = op.inputs["x"], op.outputs[0]
            in_shape, flat_shape = static_shape_of(x), static_shape_of(flat)
            if in_shape is None or flat_shape is None or len(in_shape) < 3 or len(flat_shape) != 2:
                continue
            lead = in_shape[:-1]
            if flat_shape != (int(_prod(lead)), in_shape[-1]):
                continue
            found = _row_chain(flat, block)
            if found is None or not any(o.op_type == "linear" for o in found[0]):
                continue
            chain, tail = found
            out = tail.outputs[0]
            out_shape, last = static_shape_of(out), static_shape_of(chain[-1].outputs[0])
            if out_shape is None or last is None or out_shape != lead + (last[-1],):
                continue
            removed.update(id(o) for o in (op, *chain, tail))
            saved += _rebuild(block, op, chain, tail, x)
    if saved:
        log.debug("unflatten_linear_chains saved %d ops", saved)
    return saved


def _prod(dims: tuple[int, ...]) -> int:
    total = 1
    for d in dims:
        total *= d
    return total


def _rebuild(block: Any, head: Any, chain: list[Any], tail: Any, x: Any) -> int:
    out = tail.outputs[0]
    name = out.name
    with block, mb.set_before_op(tail):
        var = x
        for op in chain:
            kwargs = {k: (var if k == "x" else v) for k, v in op.inputs.items()}
            var = getattr(mb, op.op_type)(**kwargs, name=f"{op.name}__rows")
    out.name = f"{name}__replaced"
    block.replace_uses_of_var_after_op(anchor_op=tail, old_var=out, new_var=var)
    block.remove_ops([tail, *reversed(chain), head])
    var.name = name
    return 2
