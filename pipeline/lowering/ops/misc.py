"""Inference-time pass-throughs and optionals: Dropout, Optional, OptionalHasElement,
OptionalGetElement.

Dropout at inference is the identity (its mask all true); optionals, like sequences
(``ops/sequence.py``), are tracked at conversion time as an :class:`OptionalValue` that holds a
MIL value or nothing, so they cost no MIL op.  The I/O adapter rejects optional-typed graph
inputs and outputs, so every optional is built inside the graph and its emptiness is known.

Spec changes read: Dropout 7 (is_test removed; mask of type T), 10 (mask bool), 12 (ratio and
training_mode become inputs, seed attribute), 13 and 22 (types widened); Optional 15, 28 (types
widened); OptionalHasElement 15, 18 (input may be a plain tensor/sequence or omitted), 28;
OptionalGetElement 15, 18 (input may be a plain tensor/sequence: identity), 28.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.registry import onnx_op

log = logging.getLogger(__name__)


class OptionalValue:
    """An ONNX optional known at conversion time: ``value`` is a MIL value/Sequence or None.

    ``op`` is None so the driver binds it as a value without naming it (it is no MIL value).
    """

    op = None

    def __init__(self, value: Any | None) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"OptionalValue({'empty' if self.value is None else 'set'})"


def _filled_like(ctx: LowerContext, x: Any, value: Any) -> Any:
    """A tensor of ``x``'s shape filled with ``value``: a const when the shape is static."""
    shape = getattr(x, "shape", ())
    if all(isinstance(d, (int, np.integer)) for d in shape):
        return ctx.const(np.full(tuple(int(d) for d in shape), value))
    return ctx.mb.fill(shape=ctx.mb.shape(x=x), value=value)


@onnx_op("Dropout", since=7)
def dropout_v7(ctx: LowerContext, node: Node) -> Any:
    """y = x (inference); mask = ones of x's shape and type.  MIL: nothing, plus a const mask."""
    x = node.input(0)
    if len(node.output_names) > 1 and node.output_names[1]:
        return x, _filled_like(ctx, x, ctx.scalar_like(x, 1))
    return x


@onnx_op("Dropout", since=10)
def dropout_v10(ctx: LowerContext, node: Node) -> Any:
    """y = x (inference); mask = true everywhere.  MIL: nothing, plus a const (or fill) mask."""
    x = node.input(0)
    if len(node.output_names) > 1 and node.output_names[1]:
        return x, _filled_like(ctx, x, True)
    return x


@onnx_op("Dropout", since=12)
def dropout_v12(ctx: LowerContext, node: Node) -> Any:
    """y = x when training_mode is false or ratio is 0; mask = true.  MIL: nothing, plus a mask.

    Limits: training_mode true with ratio > 0 draws random numbers ONNX and Core ML cannot agree
    on, and a run-time training_mode with a ratio that is not a constant 0 cannot be decided at
    conversion: both raise.
    """
    ratio = node.const_input(1) if node.has_input(1) else np.array(0.5)
    if ratio is not None and float(np.asarray(ratio).reshape(-1)[0]) == 0.0:
        return dropout_v10(ctx, node)  # nothing is dropped, whatever training_mode says
    training = node.const_input(2) if node.has_input(2) else np.array(False)
    if training is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: training_mode is computed at run time; Core ML models run "
            "inference only, so make it a constant false (or drop the input) before converting"
        )
    if bool(np.asarray(training).reshape(-1)[0]):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: training_mode=true drops random elements, which a "
            "converted model cannot reproduce; export the model in eval mode (model.eval())"
        )
    return dropout_v10(ctx, node)


@onnx_op("Optional", since=15)
def optional(ctx: LowerContext, node: Node) -> Any:
    """opt = Some(x) or None when the input is omitted.  MIL: nothing (conversion-time value)."""
    return OptionalValue(node.input(0))


def _contents(node: Node) -> tuple[bool, Any]:
    """(known to hold a value?, the value) of input 0, a plain value counting as a full optional."""
    value = node.input(0)
    if isinstance(value, OptionalValue):
        return value.value is not None, value.value
    return value is not None, value


@onnx_op("OptionalHasElement", since=15)
def optional_has_element(ctx: LowerContext, node: Node) -> Any:
    """b = (input is a non-empty optional).  MIL: a bool const (emptiness is known at conversion).

    Limits: opset 15 requires an optional input; from 18 a plain tensor or an omitted input is
    accepted (true / false) - both are handled the same way here.
    """
    has, _ = _contents(node)
    return ctx.const(np.array(has))


@onnx_op("OptionalGetElement", since=15)
def optional_get_element(ctx: LowerContext, node: Node) -> Any:
    """y = the optional's value (a plain input passes through, opset 18).  MIL: nothing.

    Limits: an empty optional is an error in ONNX too; it is reported at conversion.
    """
    has, value = _contents(node)
    if not has:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: the optional is empty, so OptionalGetElement would fail at "
            "run time; guard it with OptionalHasElement + If or fix the model"
        )
    return value
