"""MIL clean-up of the attention scaffolding torch's exporter writes around ``softmax(QK^T)V``.

``fold_matmul_scales``: the exporter scales both Q and K^T by ``sqrt(scale)`` (two ``mul``
ops); as ``(a*s) @ (b*t) = (a*(s*t)) @ b`` for scalars, one ``mul`` on the left operand does.

``drop_softmax_nan_guards``: the exporter writes ``where(isnan(p), 0, p)`` after the softmax
(MIL: ``select(not_equal(p, p), 0, p)``) for rows masked entirely with -inf.  When the scores
come straight from a ``matmul`` (optionally scaled by a constant), no mask is added, so a row
of -inf cannot occur and the guard is the identity on finite scores; it is dropped then and
kept otherwise.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from coremltools.converters.mil import Builder as mb

from pipeline.lowering.cleanup_util import ops_of_type, sole_use

log = logging.getLogger(__name__)


def _scalar_scale(var: Any, block: Any) -> tuple[Any, np.ndarray] | None:
    """(tensor, scale) when ``var = mul(tensor, scalar const)`` is used only once."""
    op = var.op
    if op is None or op.op_type != "mul" or not sole_use(var, block):
        return None
    x, y = op.inputs["x"], op.inputs["y"]
    for tensor, const in ((x, y), (y, x)):
        val = const.val
        if tensor.val is None and val is not None and np.size(val) == 1 and np.ndim(val) <= (tensor.rank or 0):
            return tensor, np.asarray(val)
    return None


def fold_matmul_scales(program: Any) -> int:
    """matmul(a*s, b*t) -> matmul(a*(s*t), b) for scalar constants s, t; returns ops saved."""
    saved = 0
    for block, op in ops_of_type(program, "matmul"):
        left, right = op.inputs["x"], op.inputs["y"]
        lhs, rhs = _scalar_scale(left, block), _scalar_scale(right, block)
        if lhs is None or rhs is None or left is right:
            continue
        (a, s), (b, t) = lhs, rhs
        if s.dtype != t.dtype:
            continue
        scale = (s.astype(np.float64) * t.astype(np.float64)).astype(s.dtype).reshape(s.shape)
        with block, mb.set_before_op(op):
            scaled = mb.mul(x=a, y=scale, name=f"{left.name}__folded")
        block.replace_uses_of_var_after_op(anchor_op=scaled.op, old_var=left, new_var=scaled)
        block.replace_uses_of_var_after_op(anchor_op=right.op, old_var=right, new_var=b)
        block.remove_ops([left.op, right.op])
        saved += 1
    if saved:
        log.debug("fold_matmul_scales saved %d ops", saved)
    return saved


def _unmasked_scores(var: Any) -> bool:
    """``var`` is a matmul's result, possibly scaled by constants (no additive mask)."""
    op = var.op
    while op is not None and op.op_type in ("mul", "real_div"):
        xs = [v for v in (op.inputs["x"], op.inputs["y"]) if v.val is None]
        if len(xs) != 1:
            return False
        op = xs[0].op
    return op is not None and op.op_type == "matmul"


def drop_softmax_nan_guards(program: Any) -> int:
    """select(p != p, 0, p) -> p for p = softmax(unmasked scores); returns ops saved."""
    saved = 0
    for block, op in ops_of_type(program, "select"):
        cond, zero, p = op.inputs["cond"], op.inputs["a"], op.inputs["b"]
        test = cond.op
        if test is None or test.op_type != "not_equal" or test.inputs["x"] is not p \
                or test.inputs["y"] is not p or not sole_use(cond, block):
            continue
        if zero.val is None or np.any(np.asarray(zero.val) != 0) or np.size(zero.val) != 1:
            continue
        if p.op is None or p.op.op_type != "softmax" or not _unmasked_scores(p.op.inputs["x"]):
            continue
        out = op.outputs[0]
        if any(v is out for v in block.outputs) or out.shape != p.shape:
            continue
        block.replace_uses_of_var_after_op(anchor_op=op, old_var=out, new_var=p)
        block.remove_ops([op, test])
        saved += 2
    if saved:
        log.debug("drop_softmax_nan_guards saved %d ops", saved)
    return saved
