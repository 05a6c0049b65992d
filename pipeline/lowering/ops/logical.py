"""Comparison and logic: Equal, Greater, GreaterOrEqual, Less, LessOrEqual, And, Or, Xor, Not, Where.

Each maps to one MIL op (broadcasting as in numpy), except Equal on bool tensors, which MIL's
``equal`` does not take: it becomes not(xor).

BitShift and BitwiseAnd/Or/Xor/Not (no MIL op) are exact integer composites in ``bitwise.py``.

Spec changes read: Equal 7, 11 (bool/int types), 13, 19 (string); Greater/Less 7, 9, 13;
GreaterOrEqual/LessOrEqual 12, 16; And/Or/Xor 7; Not 1; Where 9, 16.
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.registry import onnx_op

log = logging.getLogger(__name__)

# ONNX op -> (MIL op, first ONNX opset); all are z = x OP y with numpy broadcasting.
_BINARY = {
    "Greater": ("greater", 7),
    "GreaterOrEqual": ("greater_equal", 12),
    "Less": ("less", 7),
    "LessOrEqual": ("less_equal", 12),
    "And": ("logical_and", 7),
    "Or": ("logical_or", 7),
    "Xor": ("logical_xor", 7),
}


def _binary(onnx_name: str, mil_name: str, since: int) -> None:
    def handler(ctx: LowerContext, node: Node) -> Any:
        return getattr(ctx.mb, mil_name)(x=node.input(0), y=node.input(1))

    handler.__name__ = mil_name
    handler.__doc__ = f"z = {onnx_name}(a, b) elementwise, broadcast.  MIL: {mil_name}."
    onnx_op(onnx_name, since=since)(handler)


for _onnx, (_mil, _since) in _BINARY.items():
    _binary(_onnx, _mil, _since)


@onnx_op("Equal", since=7)
def equal(ctx: LowerContext, node: Node) -> Any:
    """z = (a == b).  MIL: equal; bool operands: logical_not(logical_xor).

    Limits: string tensors (opset 19) have no Core ML form.
    """
    a, b = node.input(0), node.input(1)
    if ctx.np_dtype(a).kind == "b":
        return ctx.mb.logical_not(x=ctx.mb.logical_xor(x=a, y=b))
    return ctx.mb.equal(x=a, y=b)


@onnx_op("Not", since=1)
def not_(ctx: LowerContext, node: Node) -> Any:
    """y = not x.  MIL: logical_not."""
    return ctx.mb.logical_not(x=node.input(0))


@onnx_op("Where", since=9)
def where(ctx: LowerContext, node: Node) -> Any:
    """y = cond ? a : b, broadcast over all three.  MIL: select."""
    return ctx.mb.select(cond=node.input(0), a=node.input(1), b=node.input(2))
