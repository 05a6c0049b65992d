"""Grid rounding for the element types Core ML has no storage for (no ops registered here).

A tensor of a narrow ONNX type is *held* in a wider Core ML type with its values exactly on the
narrow type's grid (``pipeline.lowering.dtypes``): FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2,
FLOAT8E5M2FNUZ, FLOAT4E2M1 and FLOAT8E8M0 in fp32 (each of their values is exact in fp32), INT4,
UINT4, INT2 and UINT2 in int32.  Reading such a tensor is therefore free; producing one (Cast,
CastLike, QuantizeLinear) maps a wide value onto the grid with the composites below, which
reproduce ONNX's reference semantics (onnx.numpy_helper.saturate_cast, ml_dtypes ``astype``,
onnx.numpy_helper.to_float8e8m0):

* small floats round to nearest, ties to even, on the extended grid of the type; a result above
  the largest finite value becomes +-max when saturating, else +-inf (E5M2) or NaN (the others);
  FNUZ types have no negative zero; FLOAT4E2M1 always saturates and turns NaN into -0;
* FLOAT8E8M0 keeps the exponent of |x| (round_mode up / down / nearest as the reference);
* narrow integers keep the low bits of the truncated value (two's complement wrap-around).

Only comparisons, select, reduce_max, multiplications by powers of two and ``round`` are used,
so the composites are exact (no log/exp2 estimates of the exponent).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import ml_dtypes
import numpy as np
from onnx import TensorProto

from pipeline.lowering.context import LowerContext

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FloatGrid:
    """The value grid of a small float type: 2**(k - mant) steps in binade [2**k, 2**(k+1))."""

    mant: int  # stored mantissa bits
    emin: int  # exponent of the smallest normal value (subnormals share its step)
    emax: int  # exponent of the largest binade
    max: float  # largest finite value
    inf: bool  # overflow without saturation gives +-inf (else NaN)
    negative_zero: bool  # FNUZ types have none
    always_saturates: bool  # FLOAT4E2M1: no inf/NaN encodings at all


def _grid(np_type: Any, inf: bool, negative_zero: bool = True, always: bool = False) -> FloatGrid:
    info = ml_dtypes.finfo(np_type)
    return FloatGrid(
        mant=int(info.nmant),
        emin=int(np.log2(float(info.smallest_normal))),
        emax=int(np.floor(np.log2(float(info.max)))),
        max=float(info.max),
        inf=inf,
        negative_zero=negative_zero,
        always_saturates=always,
    )


#: Small float ONNX types held in fp32 -> their grid.
FLOAT_GRIDS: dict[int, FloatGrid] = {
    TensorProto.FLOAT8E4M3FN: _grid(ml_dtypes.float8_e4m3fn, inf=False),
    TensorProto.FLOAT8E4M3FNUZ: _grid(ml_dtypes.float8_e4m3fnuz, inf=False, negative_zero=False),
    TensorProto.FLOAT8E5M2: _grid(ml_dtypes.float8_e5m2, inf=True),
    TensorProto.FLOAT8E5M2FNUZ: _grid(ml_dtypes.float8_e5m2fnuz, inf=False, negative_zero=False),
    TensorProto.FLOAT4E2M1: _grid(ml_dtypes.float4_e2m1fn, inf=False, always=True),
}

#: Narrow integer ONNX types held in int32 -> (min, max).
INT_RANGES: dict[int, tuple[int, int]] = {
    TensorProto.INT4: (-8, 7),
    TensorProto.UINT4: (0, 15),
    TensorProto.INT2: (-2, 1),
    TensorProto.UINT2: (0, 3),
}

E8M0 = TensorProto.FLOAT8E8M0
#: Every small float type held in fp32 (the FLOAT_GRIDS types and FLOAT8E8M0).
NARROW_FLOATS = frozenset({*FLOAT_GRIDS, E8M0})


def is_narrow(elem: int | None) -> bool:
    """Whether ONNX type ``elem`` is held in a wider Core ML type by this module's rules."""
    return elem in NARROW_FLOATS or elem in INT_RANGES


def _fp32(ctx: LowerContext, x: Any) -> Any:
    return ctx.cast(x, np.float32)


def _step_lookup(ctx: LowerContext, a: Any, exponents: range, shift: int, floor: float) -> Any:
    """max(floor, 2**(k + shift) for the largest k in ``exponents`` with a >= 2**k).

    One comparison per binade along a new last axis, then reduce_max: exact for any a (NaN
    gives ``floor``); costs len(exponents) times the memory of ``a``.
    """
    mb = ctx.mb
    thresholds = np.array([2.0**k for k in exponents], np.float32)
    steps = np.array([2.0**(k + shift) for k in exponents], np.float32)
    # Core ML tensors have rank <= 5: a rank-5 value is looked up flat (the extra axis is rank 6).
    flat = mb.reshape(x=a, shape=[-1]) if a.rank >= 5 else a
    rank = flat.rank
    mask = mb.greater_equal(x=mb.expand_dims(x=flat, axes=[rank]), y=thresholds)
    # mask * steps, not select: coremltools infers select's shape from ``a`` alone.
    picked = mb.mul(x=ctx.cast(mask, np.float32), y=steps)
    best = mb.maximum(x=mb.reduce_max(x=picked, axes=[rank], keep_dims=False), y=np.float32(floor))
    return mb.reshape(x=best, shape=mb.shape(x=a)) if flat is not a else best


def round_to_float_grid(ctx: LowerContext, x: Any, elem: int, saturate: bool) -> Any:
    """x (fp16/fp32) rounded half-to-even onto the grid of small float type ``elem``, in fp32.

    step = 2**(max(emin, floor(log2|x|)) - mant) by lookup; y = round(x / step) * step; then
    the overflow, NaN and zero rules of the type (module docstring).
    """
    grid = FLOAT_GRIDS[elem]
    mb = ctx.mb
    x = _fp32(ctx, x)
    a = mb.abs(x=x)
    step = _step_lookup(ctx, a, range(grid.emin + 1, grid.emax + 1), -grid.mant, 2.0 ** (grid.emin - grid.mant))
    # x / step is exact (a power of two, no overflow); MIL round keeps the sign of a zero.
    y = mb.mul(x=mb.round(x=mb.real_div(x=x, y=step)), y=step)
    negative = mb.less(x=x, y=np.float32(0))
    over = mb.greater(x=mb.abs(x=y), y=np.float32(grid.max))
    if saturate or grid.always_saturates:
        big = mb.select(cond=negative, a=np.float32(-grid.max), b=np.float32(grid.max))
    elif grid.inf:
        big = mb.select(cond=negative, a=np.float32(-np.inf), b=np.float32(np.inf))
    else:
        # The NaN keeps the sign of x, as ml_dtypes' conversion does.
        big = mb.select(cond=negative, a=np.float32(-np.nan), b=np.float32(np.nan))
    y = mb.select(cond=over, a=big, b=y)
    if not grid.negative_zero:
        y = mb.select(cond=mb.equal(x=y, y=np.float32(0)), a=np.float32(0), b=y)
    if grid.always_saturates:
        # ml_dtypes turns NaN into -0 for FLOAT4E2M1 (it has no NaN).
        y = mb.select(cond=mb.not_equal(x=x, y=x), a=np.float32(-0.0), b=y)
    return y


def round_to_e8m0(ctx: LowerContext, x: Any, saturate: bool, round_mode: str) -> Any:
    """2**e for the exponent e of |x| (fp32 bits), rounded per ``round_mode``; inf/NaN -> NaN.

    up: e + 1 when |x| has a fraction; nearest: e + 1 when the mantissa is >= 0.5; down: e.  The
    fp32 subnormal range has e = -127 (zero included).  Past 2**127: NaN, or 2**127 saturating.
    """
    mb = ctx.mb
    a = mb.abs(x=_fp32(ctx, x))
    tiny = 2.0**-126
    # 2**floor(log2 a) for normal a, in two exact lookups of 16 binades each.
    coarse = _step_lookup(ctx, a, range(-126, 128, 16), 0, tiny)
    fine = _step_lookup(ctx, mb.real_div(x=a, y=coarse), range(16), 0, 1.0)
    p = mb.mul(x=coarse, y=fine)
    subnormal = mb.less(x=a, y=np.float32(tiny))
    if round_mode == "up":
        up_normal = mb.greater(x=a, y=p)
        up_sub = mb.greater(x=a, y=np.float32(0))
    elif round_mode == "nearest":
        up_normal = mb.greater_equal(x=a, y=mb.mul(x=p, y=np.float32(1.5)))
        up_sub = mb.greater(x=a, y=np.float32(2.0**-127))
    else:
        up_normal = up_sub = mb.less(x=a, y=np.float32(0))  # never
    base = mb.select(cond=subnormal, a=np.float32(2.0**-127), b=p)
    up = mb.select(cond=subnormal, a=up_sub, b=up_normal)
    top = np.float32(2.0**127)
    if saturate:
        up = mb.logical_and(x=up, y=mb.less(x=base, y=top))
        bumped = mb.mul(x=base, y=np.float32(2))
    else:
        # 2**127 * 2 overflows fp32 to inf; the exponent 0xFF it stands for is NaN.
        bumped = mb.select(cond=mb.equal(x=base, y=top), a=np.float32(np.nan), b=mb.mul(x=base, y=np.float32(2)))
    y = mb.select(cond=up, a=bumped, b=base)
    special = mb.logical_or(x=mb.not_equal(x=a, y=a), y=mb.equal(x=a, y=np.float32(np.inf)))
    return mb.select(cond=special, a=np.float32(np.nan), b=y)


def wrap_int(ctx: LowerContext, x: Any, elem: int) -> Any:
    """Integer (int32) x reduced to narrow integer type ``elem``: ((x + off) mod m) - off."""
    lo, hi = INT_RANGES[elem]
    modulus, offset = hi - lo + 1, -lo
    mb = ctx.mb
    if offset:
        x = mb.add(x=x, y=np.int32(offset))
    x = mb.mod(x=x, y=np.int32(modulus))
    if offset:
        x = mb.sub(x=x, y=np.int32(offset))
    return x


def to_narrow(ctx: LowerContext, x: Any, elem: int, saturate: bool = True, round_mode: str = "up") -> Any:
    """x converted to narrow ONNX type ``elem`` as Cast does, in its Core ML holder type.

    Floats: grid rounding (saturate applies to float8 only).  Integers: truncate toward zero,
    then keep the low bits (ml_dtypes' ``astype``); NaN and +-inf give 0.
    """
    if elem in FLOAT_GRIDS:
        if not ctx.is_float(x):
            x = ctx.cast(x, np.float32)
        return round_to_float_grid(ctx, x, elem, saturate)
    if elem == E8M0:
        return round_to_e8m0(ctx, x, saturate, round_mode)
    if ctx.is_float(x):
        finite = ctx.mb.less(x=ctx.mb.abs(x=x), y=ctx.scalar_like(x, np.inf))
        x = ctx.mb.select(cond=finite, a=x, b=ctx.scalar_like(x, 0))
        x = ctx.cast(x, np.int32)
    else:
        x = ctx.cast(x, np.int32)
    return wrap_int(ctx, x, elem)
