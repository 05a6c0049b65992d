"""Elementwise arithmetic: Add, Sub, Mul, Div, Pow, Mod, Max, Min, Sum, Mean.

ONNX and MIL broadcast alike (numpy rules), so the binary ops map to one MIL op each.  The
variadic ops (Max, Min, Sum, Mean) chain binary MIL ops, which broadcast the same way.

Spec changes read: Add/Sub/Mul/Div 7 (numpy broadcasting), 13/14 (types only); Pow 7, 12
(exponent type T1 may differ from the base), 13, 15; Mod 10 (fmod attribute), 13; Max/Min 8
(broadcasting), 12 (integer types), 13; Sum/Mean 8 (broadcasting), 13.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.registry import composite_op, onnx_op

log = logging.getLogger(__name__)


@onnx_op("Add", since=7)
def add(ctx: LowerContext, node: Node) -> Any:
    """y = a + b.  MIL: add."""
    return ctx.mb.add(x=node.input(0), y=node.input(1))


@onnx_op("Sub", since=7)
def sub(ctx: LowerContext, node: Node) -> Any:
    """y = a - b.  MIL: sub."""
    return ctx.mb.sub(x=node.input(0), y=node.input(1))


@onnx_op("Mul", since=7)
def mul(ctx: LowerContext, node: Node) -> Any:
    """y = a * b.  MIL: mul."""
    return ctx.mb.mul(x=node.input(0), y=node.input(1))


def _abs_sign(ctx: LowerContext, var: Any) -> tuple[Any, Any]:
    """(|v|, sign(v)): folded to constants when ``var`` is known at conversion time."""
    val = ctx.value_of(var)
    if val is not None:
        return ctx.const(np.abs(val).astype(val.dtype)), np.sign(val).astype(val.dtype)
    return ctx.mb.abs(x=var), ctx.mb.sign(x=var)


def _times_sign(ctx: LowerContext, var: Any, sign: Any) -> Any:
    """var * sign, skipping the multiply when a constant sign is all +1.

    ``var`` already has the broadcast shape of the operand ``sign`` came from, so skipping the
    multiply never changes the result's shape.
    """
    if isinstance(sign, np.ndarray):
        if np.all(sign == 1):
            return var
        sign = ctx.const(sign)
    return ctx.mb.mul(x=var, y=sign)


def trunc_div(ctx: LowerContext, a: Any, b: Any) -> Any:
    """Integer a / b truncated toward zero: sign(a) * sign(b) * floor_div(|a|, |b|).

    Exact in int32 (no float rounding): floor and truncation agree on non-negative operands, so
    the quotient of the magnitudes only needs the product of the signs.  With a constant divisor
    (the common case) |b| and sign(b) fold, leaving abs, floor_div, sign, mul.
    """
    abs_b, sign_b = _abs_sign(ctx, b)
    abs_a, sign_a = _abs_sign(ctx, a)
    q = ctx.mb.floor_div(x=abs_a, y=abs_b)
    return _times_sign(ctx, _times_sign(ctx, q, sign_a), sign_b)


@onnx_op("Div", since=7)
def div(ctx: LowerContext, node: Node) -> Any:
    """y = a / b; integer division truncates toward zero.  MIL: real_div (floats); integers: abs, floor_div, sign, mul.

    Limits: integer division by zero is undefined in ONNX and gives whatever MIL floor_div gives.
    """
    a, b = node.input(0), node.input(1)
    if ctx.is_float(a):
        return ctx.mb.real_div(x=a, y=b)
    return trunc_div(ctx, a, b)


def _pow_const_exponent(ctx: LowerContext, x: Any, exponent: np.ndarray) -> Any | None:
    """A cheaper exact form of x ** c for a few scalar constants c, else None."""
    if exponent.size != 1 or not ctx.is_float(x):
        return None
    c = float(exponent.reshape(()))
    if exponent.ndim > x.rank:  # the exponent would raise the result's rank
        return None
    if c == 1.0:
        return ctx.mb.identity(x=x)
    if c == 2.0:
        # square is exact and defined for negative bases, which a pow via exp/log is not.
        return ctx.mb.square(x=x)
    if c == 0.5:
        return ctx.mb.sqrt(x=x)
    return None


@onnx_op("Pow", since=7)
def pow_(ctx: LowerContext, node: Node) -> Any:
    """z = x ** y (the result has x's type).  MIL: pow; square / sqrt for constant exponents 2 / 0.5.

    Limits: an integer base with a non-integral float exponent is computed in fp32 and truncated;
    on the neural-network backend a constant exponent must be a single value.
    """
    x, y = node.input(0), node.input(1)
    y_val = ctx.value_of(y)
    x_dtype = ctx.np_dtype(x)
    if y_val is not None:
        cheap = _pow_const_exponent(ctx, x, y_val)
        if cheap is not None:
            return cheap
        if x_dtype.kind == "f" or np.all(np.mod(y_val, 1) == 0):
            if y_val.size == 1 and y_val.ndim <= x.rank:
                # A scalar exponent stays a scalar: the neural-network backend maps it to its
                # unary power layer, which takes only a scalar.
                return ctx.mb.pow(x=x, y=x_dtype.type(y_val.item()))
            if ctx.target < 15:
                raise UnsupportedOpError(
                    f"lower: {node.describe()}: a constant exponent tensor has no neural-network "
                    "form (its power layer takes one scalar); use the mlprogram backend"
                )
            return ctx.mb.pow(x=x, y=ctx.const(y_val.astype(x_dtype)))
    if ctx.np_dtype(y) == x_dtype:
        return ctx.mb.pow(x=x, y=y)
    if x_dtype.kind == "f":
        return ctx.mb.pow(x=x, y=ctx.cast(y, x_dtype))
    # Integer base, float exponent: ONNX computes the real power and converts back to T.
    real = ctx.mb.pow(x=ctx.cast(x, np.float32), y=ctx.cast(y, np.float32))
    return ctx.cast(real, x_dtype)


@onnx_op("Mod", since=10)
def mod(ctx: LowerContext, node: Node) -> Any:
    """fmod=0: a - floor(a/b)*b (sign of b); fmod=1: a - trunc(a/b)*b (sign of a).  MIL: mod; fmod=1: sign(a) * mod(|a|, |b|).

    Limits: the float remainder is MIL's a - floor(a/b)*b, exact up to the rounding of a/b.
    """
    a, b = node.input(0), node.input(1)
    fmod = int(node.attrs.get("fmod", 0))
    if fmod not in (0, 1):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: fmod={fmod} is not 0 or 1; fix the model"
        )
    if fmod == 0:
        return ctx.mb.mod(x=a, y=b)
    abs_b, _ = _abs_sign(ctx, b)
    abs_a, sign_a = _abs_sign(ctx, a)
    return _times_sign(ctx, ctx.mb.mod(x=abs_a, y=abs_b), sign_a)


def _chain(ctx: LowerContext, node: Node, op: str) -> Any:
    """Fold the node's inputs left to right with the binary MIL op ``op``."""
    values = [v for v in node.inputs if v is not None]
    if not values:
        raise UnsupportedOpError(f"lower: {node.describe()}: needs at least one input")
    if len(values) == 1:
        return ctx.mb.identity(x=values[0])
    acc = values[0]
    for value in values[1:]:
        acc = getattr(ctx.mb, op)(x=acc, y=value)
    return acc


@onnx_op("Max", since=6)
def max_(ctx: LowerContext, node: Node) -> Any:
    """y = max(x0, x1, ...) elementwise.  MIL: maximum chain (identity for one input)."""
    return _chain(ctx, node, "maximum")


@onnx_op("Min", since=6)
def min_(ctx: LowerContext, node: Node) -> Any:
    """y = min(x0, x1, ...) elementwise.  MIL: minimum chain (identity for one input)."""
    return _chain(ctx, node, "minimum")


@onnx_op("Sum", since=6)
def sum_(ctx: LowerContext, node: Node) -> Any:
    """y = x0 + x1 + ... elementwise.  MIL: add chain (identity for one input)."""
    return _chain(ctx, node, "add")


@composite_op("Mean", since=6)
def mean(ctx: LowerContext, node: Node) -> Any:
    """y = (x0 + x1 + ...) / n.  MIL: add chain, then one mul by the constant 1/n.

    Multiplying by 1/n (rather than real_div) keeps the op on the Neural Engine's fast path; the
    rounding of 1/n adds at most one ulp.
    """
    values = [v for v in node.inputs if v is not None]
    total = _chain(ctx, node, "add")
    if len(values) == 1:
        return total
    return ctx.mb.mul(x=total, y=ctx.scalar_like(values[0], 1.0 / len(values)))
