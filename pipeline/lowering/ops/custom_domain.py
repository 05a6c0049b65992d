"""Ops of our own ONNX domain ``pipeline.custom`` (version 1; semantics in symbolics/DOMAIN.md).

Ops: HardTanh.
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.registry import onnx_op

log = logging.getLogger(__name__)

CUSTOM_DOMAIN = "pipeline.custom"


@onnx_op("HardTanh", since=1, domain=CUSTOM_DOMAIN)
def hard_tanh(ctx: LowerContext, node: Node) -> Any:
    """Y = min(max(X, min_val), max_val), bounds rounded to X's type.

    MIL: relu6 for (0, 6) (what Apple's frontend emits for ReLU6), else clip.
    Limits: none (min_val > max_val gives max_val everywhere, as clip does).
    """
    x = node.input(0)
    if node.attr("min_val") is None or node.attr("max_val") is None:
        raise UnsupportedOpError(f"lower: {node.describe()}: min_val and max_val are required; fix the model")
    lo, hi = float(node.attr("min_val")), float(node.attr("max_val"))
    if (lo, hi) == (0.0, 6.0):
        return ctx.mb.relu6(x=x)
    return ctx.mb.clip(x=x, alpha=ctx.scalar_like(x, lo), beta=ctx.scalar_like(x, hi))
