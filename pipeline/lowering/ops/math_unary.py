"""Elementwise unary math: Neg, Abs, Reciprocal, Sqrt, Exp, Log, Floor, Ceil, Round, Sign, Sin, Cos,
Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh, Erf, IsNaN, IsInf, Clip.

Most map to the MIL op of the same name.  MIL's ``inverse`` and ``log`` add an epsilon by default
(1e-4 and 1e-45); ONNX has none, so both are built with ``epsilon=0``.

Spec changes read: the unary ops changed only their type lists (6, 13; Sign/Asinh... 9; IsInf 10;
IsNaN 9, 13, 20); Clip 6 (min/max attributes), 11 (min/max optional inputs), 12 (integer types),
13.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.registry import composite_op, onnx_op

log = logging.getLogger(__name__)

# ONNX op -> MIL op of identical semantics on the types both accept (since = first ONNX opset).
_DIRECT = {
    "Abs": ("abs", 6),
    "Sqrt": ("sqrt", 6),
    "Exp": ("exp", 6),
    "Floor": ("floor", 6),
    "Ceil": ("ceil", 6),
    "Round": ("round", 11),
    "Sign": ("sign", 9),
    "Sin": ("sin", 7),
    "Cos": ("cos", 7),
    "Tan": ("tan", 7),
    "Asin": ("asin", 7),
    "Acos": ("acos", 7),
    "Atan": ("atan", 7),
    "Sinh": ("sinh", 9),
    "Cosh": ("cosh", 9),
    "Atanh": ("atanh", 9),
    "Erf": ("erf", 9),
}


def _direct(onnx_name: str, mil_name: str, since: int) -> None:
    def handler(ctx: LowerContext, node: Node) -> Any:
        return getattr(ctx.mb, mil_name)(x=node.input(0))

    handler.__name__ = mil_name
    handler.__doc__ = f"y = {onnx_name.lower()}(x) elementwise.  MIL: {mil_name}."
    if onnx_name == "Round":
        handler.__doc__ += "  Both round half to even."
    onnx_op(onnx_name, since=since)(handler)


for _onnx, (_mil, _since) in _DIRECT.items():
    _direct(_onnx, _mil, _since)


@onnx_op("Neg", since=6)
def neg(ctx: LowerContext, node: Node) -> Any:
    """y = -x.  MIL: mul by -1 (exact for floats and int32 alike)."""
    x = node.input(0)
    return ctx.mb.mul(x=x, y=ctx.scalar_like(x, -1))


@onnx_op("Reciprocal", since=6)
def reciprocal(ctx: LowerContext, node: Node) -> Any:
    """y = 1 / x.  MIL: inverse with epsilon 0 (MIL's default 1e-4 would bias small x)."""
    x = node.input(0)
    return ctx.mb.inverse(x=x, epsilon=ctx.scalar_like(x, 0.0))


@onnx_op("Log", since=6)
def log_(ctx: LowerContext, node: Node) -> Any:
    """y = ln(x).  MIL: log with epsilon 0 (log(0) = -inf, as in ONNX)."""
    x = node.input(0)
    return ctx.mb.log(x=x, epsilon=ctx.scalar_like(x, 0.0))


@composite_op("Asinh", since=9)
def asinh(ctx: LowerContext, node: Node) -> Any:
    """y = sign(x) * ln(|x| + sqrt(x^2 + 1)).  MIL: abs, square, add, sqrt, add, log, sign, mul.

    MIL has no asinh.  The odd-symmetric form avoids the cancellation of x + sqrt(x^2 + 1) for
    large negative x, which loses all digits of ln(x + sqrt(x^2+1)) there.
    """
    x = node.input(0)
    mb = ctx.mb
    root = mb.sqrt(x=mb.add(x=mb.square(x=x), y=ctx.scalar_like(x, 1.0)))
    magnitude = mb.log(x=mb.add(x=mb.abs(x=x), y=root), epsilon=ctx.scalar_like(x, 0.0))
    return mb.mul(x=magnitude, y=mb.sign(x=x))


@composite_op("Acosh", since=9)
def acosh(ctx: LowerContext, node: Node) -> Any:
    """y = ln(x + sqrt((x - 1)(x + 1))), x >= 1.  MIL: sub, add, mul, sqrt, add, log.

    MIL has no acosh.  (x - 1)(x + 1) instead of x^2 - 1 keeps the relative precision near x = 1,
    where x^2 - 1 cancels.
    """
    x = node.input(0)
    mb = ctx.mb
    one = ctx.scalar_like(x, 1.0)
    root = mb.sqrt(x=mb.mul(x=mb.sub(x=x, y=one), y=mb.add(x=x, y=one)))
    return mb.log(x=mb.add(x=x, y=root), epsilon=ctx.scalar_like(x, 0.0))


@onnx_op("IsNaN", since=9)
def is_nan(ctx: LowerContext, node: Node) -> Any:
    """y = x != x (true only for NaN).  MIL: not_equal."""
    x = node.input(0)
    return ctx.mb.not_equal(x=x, y=x)


@onnx_op("IsInf", since=10)
def is_inf(ctx: LowerContext, node: Node) -> Any:
    """y = (x == +inf and detect_positive) or (x == -inf and detect_negative).

    MIL: equal(|x|, inf) for both signs, equal(x, +-inf) for one, less(x, -inf) (always false)
    for neither.
    """
    x = node.input(0)
    mb = ctx.mb
    pos, neg = (
        bool(node.attrs.get("detect_positive", 1)),
        bool(node.attrs.get("detect_negative", 1)),
    )
    inf, minus_inf = ctx.scalar_like(x, np.inf), ctx.scalar_like(x, -np.inf)
    if pos and neg:
        return mb.equal(x=mb.abs(x=x), y=inf)
    if pos:
        return mb.equal(x=x, y=inf)
    if neg:
        return mb.equal(x=x, y=minus_inf)
    return mb.less(x=x, y=minus_inf)


def _clip(ctx: LowerContext, x: Any, lo: Any, hi: Any) -> Any:
    """min(max(x, lo), hi) with lo/hi a numpy scalar, a MIL value, or None (unbounded)."""
    mb = ctx.mb
    lo_c = isinstance(lo, np.ndarray)
    hi_c = isinstance(hi, np.ndarray)
    if (
        ctx.is_float(x)
        and lo_c
        and hi_c
        and lo.size == 1
        and hi.size == 1
        and lo.item() < hi.item()
    ):
        return mb.clip(x=x, alpha=ctx.scalar_like(x, lo.item()), beta=ctx.scalar_like(x, hi.item()))
    if ctx.is_float(x) and lo_c and hi is None and lo.size == 1 and float(lo) == 0.0:
        return mb.relu(x=x)
    out = x
    if lo is not None:
        out = mb.maximum(x=out, y=ctx.const(lo.astype(ctx.np_dtype(x))) if lo_c else lo)
    if hi is not None:
        out = mb.minimum(x=out, y=ctx.const(hi.astype(ctx.np_dtype(x))) if hi_c else hi)
    return out if out is not x else mb.identity(x=x)


def _bound(ctx: LowerContext, var: Any) -> Any:
    """A Clip bound: its constant value as an array when known, else the MIL value (or None)."""
    if var is None:
        return None
    val = ctx.value_of(var)
    return val if val is not None else var


@onnx_op("Clip", since=6)
def clip_v6(ctx: LowerContext, node: Node) -> Any:
    """y = min(max(x, min), max) with attribute bounds.  MIL: clip (relu when only min=0 is given).

    The schema defaults (+-FLT_MAX) bound nothing, so an absent attribute emits no op.
    """
    x = node.input(0)
    lo = np.asarray(node.attrs["min"], np.float32) if node.has_attr("min") else None
    hi = np.asarray(node.attrs["max"], np.float32) if node.has_attr("max") else None
    return _clip(ctx, x, lo, hi)


@onnx_op("Clip", since=11)
def clip_v11(ctx: LowerContext, node: Node) -> Any:
    """y = min(max(x, min), max) with optional bound inputs.  MIL: clip for constant float bounds, else maximum/minimum.

    Limits: none; min > max gives max everywhere, as in ONNX.
    """
    return _clip(ctx, node.input(0), _bound(ctx, node.input(1)), _bound(ctx, node.input(2)))
