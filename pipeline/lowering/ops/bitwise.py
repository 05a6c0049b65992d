"""Bit operations on integers: BitShift, BitwiseNot, BitwiseAnd, BitwiseOr, BitwiseXor.

MIL has no bit or shift op, and every integer computes as int32 inside the program (the dtype
policy widens int8/int16/uint8/uint16 and narrows int64/uint64; uint32 keeps its bit pattern in
an int32).  Each op here is an exact integer composite on those int32 values:

- shifts multiply or floor-divide by powers of two (floor division is the arithmetic shift),
  then re-wrap to the ONNX type's width; constant shift amounts fold to constant factors;
- not is ``-1 - x`` (``2**B - 1 - x`` for narrow unsigned types): one op;
- and/or/xor split both operands into bit planes along a new last axis (``floor_div`` + ``mod``
  by 2**k, the sign bit from ``x < 0``), combine the planes with ``minimum`` / ``maximum`` /
  ``|a - b|`` and sum them back with their weights: about 14 ops, all elementwise.

Limits shared by all: 64-bit types compute in 32 bits (the dtype policy), so they are exact only
while values and results fit in int32.

Spec changes read: BitShift 11 (unsigned types), 28 (signed types: arithmetic right shift; amounts
< 0 or >= bits give the sign fill); BitwiseAnd/Or/Xor/Not 18 (introduced).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import onnx

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.registry import composite_op

log = logging.getLogger(__name__)

_T = onnx.TensorProto
#: ONNX element type -> (bits computed, signed?).  64-bit types compute in 32 bits.
_WIDTH: dict[int, tuple[int, bool]] = {
    _T.INT8: (8, True), _T.INT16: (16, True), _T.INT32: (32, True), _T.INT64: (32, True),
    _T.UINT8: (8, False), _T.UINT16: (16, False), _T.UINT32: (32, False), _T.UINT64: (32, True),
}


def _width(ctx: LowerContext, node: Node, i: int = 0) -> tuple[int, bool]:
    """(bits, signed) of input ``i``'s ONNX type (int32 when the model does not declare it)."""
    elem = ctx.onnx_type(node.input_names[i])
    if elem is None:
        return 32, True
    if elem not in _WIDTH:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: input type {_T.DataType.Name(elem)} is not an integer type; fix the model"
        )
    return _WIDTH[elem]


def _wrap(ctx: LowerContext, z: Any, bits: int, signed: bool) -> Any:
    """z reduced to ``bits`` bits (two's complement when signed); z is known to lie in ±2**30."""
    mb = ctx.mb
    if bits >= 32:
        return z
    if not signed:
        return mb.mod(x=z, y=np.int32(1 << bits))
    # ((z + 2**30 + 2**(B-1)) mod 2**B) - 2**(B-1): the 2**30 keeps the dividend non-negative.
    lifted = mb.add(x=z, y=np.int32((1 << 30) + (1 << (bits - 1))))
    return mb.sub(x=mb.mod(x=lifted, y=np.int32(1 << bits)), y=np.int32(1 << (bits - 1)))


def _shift_index(ctx: LowerContext, y: Any, bits: int) -> Any:
    """The shift amount as an index in [0, bits]: amounts < 0 or >= bits map to ``bits``."""
    mb = ctx.mb
    y = ctx.cast(y, np.int32)
    return mb.select(cond=mb.less(x=y, y=np.int32(0)), a=np.int32(bits), b=mb.minimum(x=y, y=np.int32(bits)))


def _table(ctx: LowerContext, values: list[int], index: Any, const_index: np.ndarray | None) -> Any:
    """values[index]: folded to a constant when the index is known, else one ``gather``."""
    table = np.array(values, dtype=np.int64)
    if const_index is not None:
        return ctx.const(table[const_index].astype(np.int32))
    return ctx.mb.gather(x=ctx.const(table.astype(np.int32)), indices=index, axis=0)


def _const_index(y: np.ndarray | None, bits: int) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y).astype(np.int64)
    return np.where((y < 0) | (y >= bits), bits, y)


def _shift_left(ctx: LowerContext, x: Any, y: Any, y_val: np.ndarray | None, bits: int, signed: bool) -> Any:
    """x * 2**s, wrapped to the type (0 for s out of range)."""
    index = None if y_val is not None else _shift_index(ctx, y, bits)
    # 2**31 wraps to INT32_MIN: x * INT32_MIN keeps only x's lowest bit at the top, as a shift does.
    powers = [int(np.int64(1 << k).astype(np.int32)) for k in range(bits)] + [0]
    factor = _table(ctx, powers, index, _const_index(y_val, bits))
    return _wrap(ctx, ctx.mb.mul(x=x, y=factor), bits, signed)


def _shift_right(ctx: LowerContext, x: Any, y: Any, y_val: np.ndarray | None, bits: int, signed: bool) -> Any:
    """floor(x / 2**s) (arithmetic shift); logical for uint32 by adding back the cleared top bits."""
    mb = ctx.mb
    const_idx = _const_index(y_val, bits)
    index = None if const_idx is not None else _shift_index(ctx, y, bits)
    if bits < 32:
        # |x| < 2**16, so dividing by 2**bits (s out of range) gives the sign fill (0 or -1).
        return mb.floor_div(x=x, y=_table(ctx, [1 << k for k in range(bits + 1)], index, const_idx))
    # 2**s for s up to 32 does not fit int32: divide twice, by 2**min(s, 16) and 2**(s - that).
    first = [1 << min(k, 16) for k in range(33)]
    second = [1 << (k - min(k, 16)) for k in range(33)]
    arith = mb.floor_div(x=mb.floor_div(x=x, y=_table(ctx, first, index, const_idx)),
                         y=_table(ctx, second, index, const_idx))
    if signed:
        return arith
    # uint32 held as int32: for x < 0 (u >= 2**31) the logical shift is arith + 2**(32-s),
    # added as two halves so no intermediate leaves int32.
    top = [0] + [1 << (32 - k) for k in range(1, 33)]
    low_half = [t // 2 for t in top]
    high_half = [t - t // 2 for t in top]
    negative = ctx.cast(mb.less(x=x, y=np.int32(0)), np.int32)
    arith = mb.add(x=arith, y=mb.mul(x=negative, y=_table(ctx, low_half, index, const_idx)))
    return mb.add(x=arith, y=mb.mul(x=negative, y=_table(ctx, high_half, index, const_idx)))


@composite_op("BitShift", since=11)
def bit_shift(ctx: LowerContext, node: Node) -> Any:
    """z = x << y or x >> y (logical for unsigned, arithmetic for signed types, opset 28).

    MIL: LEFT mul by 2**y (+ mod/add/sub to re-wrap narrow types); RIGHT floor_div by 2**y (two
    for 32-bit types, + a correction for uint32).  Constant y folds the powers; a run-time y adds
    less/minimum/select and a gather per power table.  Integer-exact; MIL has no shift op.
    Limits: 64-bit types compute in 32 bits.
    """
    x, y = node.input(0), node.input(1)
    bits, signed = _width(ctx, node, 0)
    x = ctx.cast(x, np.int32)
    y_val = node.const_input(1)
    direction = str(node.attrs.get("direction", "")).upper()
    if direction == "LEFT":
        return _shift_left(ctx, x, y, y_val, bits, signed)
    if direction == "RIGHT":
        return _shift_right(ctx, x, y, y_val, bits, signed)
    raise UnsupportedOpError(f"lower: {node.describe()}: direction='{direction}' must be LEFT or RIGHT; fix the model")


@composite_op("BitwiseNot", since=18)
def bitwise_not(ctx: LowerContext, node: Node) -> Any:
    """y = ~x = -1 - x (two's complement), or 2**B - 1 - x for uint8/uint16.  MIL: sub."""
    bits, signed = _width(ctx, node, 0)
    ones = -1 if signed or bits >= 32 else (1 << bits) - 1
    return ctx.mb.sub(x=np.int32(ones), y=ctx.cast(node.input(0), np.int32))


def _planes(ctx: LowerContext, x: Any, low_bits: int) -> tuple[Any, Any]:
    """(bits 0..low_bits-1 of x along a new last axis as 0/1 int32, x < 0)."""
    mb = ctx.mb
    powers = np.array([1 << k for k in range(low_bits)], dtype=np.int32)
    shifted = mb.floor_div(x=mb.expand_dims(x=x, axes=[-1]), y=powers)
    return mb.mod(x=shifted, y=np.int32(2)), mb.less(x=x, y=np.int32(0))


def _bitwise(ctx: LowerContext, node: Node, combine: str, logical: str) -> Any:
    """Bit planes of both operands combined plane by plane, then summed with their weights."""
    mb = ctx.mb
    bits, signed = _width(ctx, node, 0)
    has_sign = signed or bits >= 32
    low_bits = bits - 1 if has_sign else bits
    a, sign_a = _planes(ctx, ctx.cast(node.input(0), np.int32), low_bits)
    b, sign_b = _planes(ctx, ctx.cast(node.input(1), np.int32), low_bits)
    if combine == "xor":
        planes = mb.abs(x=mb.sub(x=a, y=b))
    else:
        planes = getattr(mb, combine)(x=a, y=b)
    weights = np.array([1 << k for k in range(low_bits)], dtype=np.int32)
    value = mb.reduce_sum(x=mb.mul(x=planes, y=weights), axes=[-1], keep_dims=False)
    if not has_sign:
        return value
    # The sign bit weighs -2**(B-1) in two's complement (sign-extended to int32).
    sign = getattr(mb, logical)(x=sign_a, y=sign_b)
    return mb.add(x=value, y=mb.select(cond=sign, a=np.int32(-(1 << (bits - 1))), b=np.int32(0)))


@composite_op("BitwiseAnd", since=18)
def bitwise_and(ctx: LowerContext, node: Node) -> Any:
    """z = x & y.  MIL: bit planes (expand_dims, floor_div, mod, less per operand), minimum,
    mul + reduce_sum by the plane weights, logical_and + select + add for the sign bit."""
    return _bitwise(ctx, node, "minimum", "logical_and")


@composite_op("BitwiseOr", since=18)
def bitwise_or(ctx: LowerContext, node: Node) -> Any:
    """z = x | y.  MIL: as BitwiseAnd with maximum and logical_or."""
    return _bitwise(ctx, node, "maximum", "logical_or")


@composite_op("BitwiseXor", since=18)
def bitwise_xor(ctx: LowerContext, node: Node) -> Any:
    """z = x ^ y.  MIL: as BitwiseAnd with |a - b| (sub, abs) and logical_xor."""
    return _bitwise(ctx, node, "xor", "logical_xor")
