"""Linear (de)quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear.

Integer values live as int32 inside the program (see ``pipeline.lowering.dtypes``), so a
quantized tensor is an int32 tensor holding int8/uint8/int16/uint16 values; the interface casts
it back to the ONNX type at the outputs.

Native or composite.  From iOS17 MIL has ``quantize`` / ``dequantize`` (int8/uint8, constant
per-tensor or per-axis parameters); they are used there.  Below iOS17, and for what the MIL ops
cannot express (dynamic scales, blocked quantization, 16-bit types), the handlers compose
``real_div, round, add, clip, cast`` / ``sub, cast, mul``.  Both forms are exact against ONNX:

* MIL ``round`` rounds half to even (the MIL doc: 0.5 rounds to 0), as ONNX asks.
* ``x - zero_point`` is an int32 subtraction, exact; its cast to float is exact for 8-bit types
  (|v| <= 255), and one float multiply rounds once, as onnxruntime does.
* The one inexact step is coremltools' ``divide_to_multiply`` pass, which turns ``x / c`` with a
  constant ``c`` into ``x * (1/c)``: the quotient can move by one ulp and so change a result
  only when ``x / scale`` lies within one ulp of a .5 tie (never for power-of-two scales).

Spec changes read: QuantizeLinear/DequantizeLinear 10 (per-tensor), 13 (axis: per-axis),
19 (float8 types, saturate), 21 (block_size, int4/uint4/int16/uint16, output_dtype for
QuantizeLinear), 23 (precision of the division; float4), 24 (float8e8m0 scales), 25 (int2/uint2;
DequantizeLinear output_dtype), 28 (float6); DynamicQuantizeLinear 11.
Float8 and float4 values are held in fp32 on their grid, int4/int2 in int32
(``narrow_types``): quantizing to them rounds ``x / scale`` onto the grid (float8 ignore the
zero point, as the reference does; float4 adds it), dequantizing is ``x * scale``.
Limits: float6 element types are unsupported.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from onnx import TensorProto

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.dtypes import onnx_to_numpy
from pipeline.lowering.node import Node
from pipeline.lowering.ops.narrow_types import FLOAT_GRIDS, INT_RANGES, round_to_float_grid
from pipeline.lowering.registry import composite_op

log = logging.getLogger(__name__)

#: Integer element types a quantized tensor can have here -> (min, max).
QRANGE: dict[int, tuple[int, int]] = {
    TensorProto.INT8: (-128, 127),
    TensorProto.UINT8: (0, 255),
    TensorProto.INT16: (-32768, 32767),
    TensorProto.UINT16: (0, 65535),
    **INT_RANGES,
}
#: Element types MIL quantize/dequantize take.
_MIL_8BIT: dict[int, Any] = {TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8}


def _type_name(elem: int) -> str:
    return TensorProto.DataType.Name(elem)


def quant_range(node: Node, elem: int) -> tuple[int, int]:
    """(min, max) of the integer type ``elem``, or UnsupportedOpError for the other types."""
    if elem not in QRANGE:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: quantized type {_type_name(elem)} is not supported here; "
            "quantize to int8/uint8 (or int16/uint16) instead"
        )
    return QRANGE[elem]


def _param(ctx: LowerContext, node: Node, i: int, rank: int, axis: int, block: int, dims: list[Any]) -> Any:
    """Scale or zero point ``i`` shaped to broadcast against the data (numpy when constant).

    Scalars (or one-element tensors) stay scalars; a 1-D parameter runs along ``axis``; a
    parameter of the data's rank is blocked: each entry repeats ``block`` times along ``axis``.
    """
    var = node.input(i)
    val = ctx.value_of(var)
    if val is not None:
        if val.size == 1:
            return val.reshape(())
        if val.ndim == 1 and block == 0:
            return val.reshape([-1 if d == axis else 1 for d in range(rank)])
        if val.ndim == rank and block > 0:
            size = dims[axis]
            if not isinstance(size, (int, np.integer)):
                raise UnsupportedOpError(f"lower: {node.describe()}: blocked quantization needs a static axis {axis}")
            return np.take(np.repeat(val, block, axis=axis), np.arange(int(size)), axis=axis)
        raise UnsupportedOpError(
            f"lower: {node.describe()}: parameter of shape {list(val.shape)} does not fit "
            f"axis={axis}, block_size={block} for data of rank {rank}; fix the model"
        )
    if block > 0:
        return _repeat_blocks(ctx, node, var, axis, block, dims)
    if var.rank == 1 and rank > 1 and var.shape[0] != 1:
        return ctx.mb.reshape(x=var, shape=[-1 if d == axis else 1 for d in range(rank)])
    return var


def _repeat_blocks(ctx: LowerContext, node: Node, var: Any, axis: int, block: int, dims: list[Any]) -> Any:
    """A run-time blocked parameter with each entry repeated ``block`` times along ``axis``.

    MIL: expand_dims, tile, reshape, slice_by_size (cut to the data's length); static shapes only.
    """
    shape = list(var.shape)
    if var.rank != len(dims) or not all(isinstance(d, (int, np.integer)) for d in [*shape, dims[axis]]):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: blocked quantization with a run-time parameter needs static "
            "shapes of the same rank as the data; fix the input shapes (--input-shape)"
        )
    mb = ctx.mb
    reps = [1] * (len(shape) + 1)
    reps[axis + 1] = block
    tiled = mb.tile(x=mb.expand_dims(x=var, axes=[axis + 1]), reps=reps)
    merged = [int(d) for d in shape]
    merged[axis] *= block
    flat = mb.reshape(x=tiled, shape=merged)
    sizes = [-1] * len(shape)
    sizes[axis] = int(dims[axis])
    return mb.slice_by_size(x=flat, begin=[0] * len(shape), size=sizes)


def _layout(node: Node, x: Any) -> tuple[int, int]:
    """(axis, block_size) of a (de)quantize node, the axis normalized to x's rank."""
    rank = max(x.rank, 1)
    axis = int(node.attrs.get("axis", 1)) if node.opset >= 13 else 1
    scale = node.input(1)
    per_tensor = scale is not None and (scale.rank == 0 or (scale.rank == 1 and scale.shape[0] == 1))
    if per_tensor and not node.attrs.get("block_size"):
        return 0, 0  # the spec ignores axis for a scalar scale (its default 1 may exceed rank 1)
    if not -rank <= axis < rank:
        raise UnsupportedOpError(f"lower: {node.describe()}: axis={axis} is out of range for rank {rank}; fix the model")
    return axis % rank, int(node.attrs.get("block_size", 0) or 0)


def _as(ctx: LowerContext, value: Any, dtype: np.dtype) -> Any:
    """A parameter (numpy or MIL) in ``dtype``: constants are converted at conversion time."""
    if isinstance(value, np.ndarray):
        return value.astype(dtype)
    return ctx.cast(value, dtype)


def quantize_to_int32(ctx: LowerContext, q: Any, zp: Any, lo: int, hi: int) -> Any:
    """clip(q + zp, lo, hi) cast to int32, for an integer-valued float ``q`` (already rounded).

    16-bit ranges are not exact in fp16 (integers above 2048 round), so they shift in fp32.
    """
    if ctx.np_dtype(q) == np.float16 and max(abs(lo), abs(hi)) > 2048:
        q = ctx.cast(q, np.float32)
    dtype = ctx.np_dtype(q)
    if zp is not None and not (isinstance(zp, np.ndarray) and not zp.any()):
        q = ctx.mb.add(x=q, y=_as(ctx, zp, dtype))
    q = ctx.mb.clip(x=q, alpha=dtype.type(lo), beta=dtype.type(hi))
    return ctx.cast(q, np.int32)


def _division_dtype(ctx: LowerContext, node: Node, scale: Any) -> np.dtype:
    """The precision of x / scale: the ``precision`` attribute (opset 23), else the scale's type."""
    precision = int(node.attrs.get("precision", 0) or 0)
    if precision:
        if precision not in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE):
            raise UnsupportedOpError(
                f"lower: {node.describe()}: precision={_type_name(precision)} is not fp32/fp16 in Core ML"
            )
        return np.dtype(np.float16 if precision == TensorProto.FLOAT16 else np.float32)
    return ctx.np_dtype(scale)


def _output_type(ctx: LowerContext, node: Node) -> int:
    """QuantizeLinear's output type: output_dtype, else the zero point's type, else uint8."""
    declared = int(node.attrs.get("output_dtype", 0) or 0)
    if declared:
        return declared
    if node.has_input(2):
        zp_type = ctx.onnx_type(node.input_names[2])
        if zp_type:
            return zp_type
    return ctx.onnx_type(node.output_name(0)) or TensorProto.UINT8


def _native_ok(ctx: LowerContext, node: Node, x: Any, elem: int, block: int, consts: list[int]) -> bool:
    """Whether MIL quantize/dequantize express the node: iOS17+, 8-bit, constant, not blocked."""
    if ctx.target < 17 or elem not in _MIL_8BIT or block > 0 or x.rank < 1:
        return False
    for i in consts:
        val = node.const_input(i)
        if node.has_input(i) and (val is None or val.ndim > 1):
            return False
    return True


def _mil_param(val: np.ndarray, axis: int, rank: int) -> tuple[np.ndarray, int | None]:
    """A constant parameter as MIL quantize wants it: a scalar (no axis) or a vector on ``axis``."""
    if val.size == 1:
        return val.reshape(()), None
    return val.reshape(-1), axis


def _quantize(ctx: LowerContext, node: Node) -> Any:
    """y = saturate(round_half_even(x / scale) + zero_point).

    MIL: quantize + cast to int32 (iOS17+, int8/uint8, constant parameters, per-tensor or
    per-axis); otherwise real_div, round, add, clip, cast (exact, see the module docstring).
    Limits: float6 outputs; run-time blocked parameters need static shapes.
    """
    x, scale = node.input(0), node.input(1)
    elem = _output_type(ctx, node)
    if elem in FLOAT_GRIDS:
        return _quantize_float(ctx, node, x, elem)
    lo, hi = quant_range(node, elem)
    if not ctx.is_float(x):
        raise UnsupportedOpError(f"lower: {node.describe()}: integer input to QuantizeLinear; cast it to float first")
    axis, block = _layout(node, x)
    work = _division_dtype(ctx, node, scale)
    if work != ctx.np_dtype(x):
        x = ctx.cast(x, work)
    if _native_ok(ctx, node, x, elem, block, [1, 2]) and work == ctx.np_dtype(node.input(0)):
        sval, axis_s = _mil_param(np.asarray(node.const_input(1)).astype(work), axis, x.rank)
        kwargs: dict[str, Any] = {"input": x, "scale": sval, "output_dtype": np.dtype(_MIL_8BIT[elem]).name}
        if node.has_input(2):
            zval, _ = _mil_param(np.asarray(node.const_input(2)), axis, x.rank)
            if zval.shape != sval.shape:
                zval = np.broadcast_to(zval, sval.shape).copy()
            kwargs["zero_point"] = ctx.mb.const(val=zval.astype(_MIL_8BIT[elem]))
        if axis_s is not None:
            kwargs["axis"] = np.int32(axis)
        return ctx.cast(ctx.mb.quantize(**kwargs), np.int32)
    dims = list(x.shape)
    rank = max(x.rank, 1)
    s = _param(ctx, node, 1, rank, axis, block, dims)
    zp = _param(ctx, node, 2, rank, axis, block, dims) if node.has_input(2) else None
    q = ctx.mb.round(x=ctx.mb.real_div(x=x, y=_as(ctx, s, work)))
    return quantize_to_int32(ctx, q, zp, lo, hi)


def _quantize_float(ctx: LowerContext, node: Node, x: Any, elem: int) -> Any:
    """y = grid(x / scale) for float8 (zero point ignored), grid(x / scale + zero_point) for float4.

    MIL: real_div (in the precision of the spec), add, then the grid rounding of narrow_types in
    fp32.  ``saturate`` (opset 19, default 1) chooses +-max or inf/NaN on overflow for float8.
    """
    scale = node.input(1)
    if not ctx.is_float(x):
        raise UnsupportedOpError(f"lower: {node.describe()}: integer input to QuantizeLinear; cast it to float first")
    axis, block = _layout(node, x)
    work = _division_dtype(ctx, node, scale)
    x = ctx.cast(x, work)
    dims = list(x.shape)
    rank = max(x.rank, 1)
    s = _param(ctx, node, 1, rank, axis, block, dims)
    v = ctx.mb.real_div(x=x, y=_as(ctx, s, work))
    if elem == TensorProto.FLOAT4E2M1 and node.has_input(2):
        zp = _param(ctx, node, 2, rank, axis, block, dims)
        v = ctx.mb.add(x=ctx.cast(v, np.float32), y=_as(ctx, zp, np.dtype(np.float32)))
    return round_to_float_grid(ctx, v, elem, bool(node.attrs.get("saturate", 1)))


@composite_op("QuantizeLinear", since=10)
def quantize_linear(ctx: LowerContext, node: Node) -> Any:
    """y = saturate(round_half_even(x / scale) + zero_point) (per-tensor; opset 13 adds axis).

    MIL: quantize + cast (iOS17+) or real_div, round, add, clip, cast.
    """
    return _quantize(ctx, node)


@composite_op("QuantizeLinear", since=19)
def quantize_linear_v19(ctx: LowerContext, node: Node) -> Any:
    """Opset 19+ adds float8 outputs and ``saturate``; 21 block_size, output_dtype; 23 precision.

    MIL: as opset 10; float8/float4 outputs round onto their grid.  Limits: float6 outputs.
    """
    return _quantize(ctx, node)


def dequantize(ctx: LowerContext, node: Node) -> Any:
    """y = (x - zero_point) * scale, in the scale's type (or output_dtype, opset 25).

    MIL: a constant when x is constant (weights fold); dequantize after a cast to int8/uint8
    (iOS17+, constant parameters, not blocked); else sub (int32, exact), cast, mul.
    Limits: float6 inputs; run-time blocked parameters need static shapes.
    """
    x, scale = node.input(0), node.input(1)
    elem = ctx.onnx_type(node.input_names[0]) or TensorProto.INT8
    if elem != TensorProto.INT32 and elem not in FLOAT_GRIDS:
        quant_range(node, elem)
    out_attr = int(node.attrs.get("output_dtype", 0) or 0)
    out = onnx_to_numpy(out_attr) if out_attr else ctx.np_dtype(scale)
    if out == np.float64 or out.name == "bfloat16":
        out = np.dtype(np.float32)
    axis, block = _layout(node, x)
    dims = list(x.shape)
    rank = max(x.rank, 1)
    if elem in FLOAT_GRIDS:
        # Small floats are held exactly in fp32; the reference ignores their zero point.
        s = _param(ctx, node, 1, rank, axis, block, dims)
        y = ctx.mb.mul(x=ctx.cast(x, np.float32), y=_as(ctx, s, np.dtype(np.float32)))
        return ctx.cast(y, out)
    xval, sval = ctx.value_of(x), ctx.value_of(scale)
    zval = node.const_input(2)
    if xval is not None and sval is not None and (zval is not None or not node.has_input(2)):
        s = _param(ctx, node, 1, rank, axis, block, dims)
        z = _param(ctx, node, 2, rank, axis, block, dims) if node.has_input(2) else 0
        centred = (xval.astype(np.int64) - np.asarray(z, np.int64)).astype(np.float32)
        return ctx.const((centred * np.asarray(s, np.float32)).astype(out))
    if _native_ok(ctx, node, x, elem, block, [1, 2]) and out == ctx.np_dtype(scale):
        s_mil, axis_s = _mil_param(np.asarray(sval).astype(out), axis, x.rank)
        kwargs: dict[str, Any] = {"input": ctx.cast(x, _MIL_8BIT[elem]), "scale": s_mil}
        if node.has_input(2):
            z_mil, _ = _mil_param(np.asarray(zval), axis, x.rank)
            if z_mil.shape != s_mil.shape:
                z_mil = np.broadcast_to(z_mil, s_mil.shape).copy()
            kwargs["zero_point"] = ctx.mb.const(val=z_mil.astype(_MIL_8BIT[elem]))
        if axis_s is not None:
            kwargs["axis"] = np.int32(axis)
        return ctx.mb.dequantize(**kwargs)
    s = _param(ctx, node, 1, rank, axis, block, dims)
    z = _param(ctx, node, 2, rank, axis, block, dims) if node.has_input(2) else None
    centred = x
    if z is not None and not (isinstance(z, np.ndarray) and not z.any()):
        centred = ctx.mb.sub(x=x, y=_as(ctx, z, np.dtype(np.int32)))
    # (x - zp) is exact in fp16 only up to 2048: wider types go through fp32.
    wide = elem not in _MIL_8BIT and out == np.float16
    work = np.dtype(np.float32) if wide else out
    y = ctx.mb.mul(x=ctx.cast(centred, work), y=_as(ctx, s, work))
    return ctx.cast(y, out)


@composite_op("DequantizeLinear", since=10)
def dequantize_linear(ctx: LowerContext, node: Node) -> Any:
    """y = (x - zero_point) * scale (per-tensor; opset 13 adds axis; 21 block_size).

    MIL: const fold, dequantize (iOS17+), or sub, cast, mul.
    """
    return dequantize(ctx, node)


@composite_op("DequantizeLinear", since=19)
def dequantize_linear_v19(ctx: LowerContext, node: Node) -> Any:
    """Opset 19+: float8 inputs; 21 block_size and 4/16-bit types; 25 output_dtype.

    MIL: as opset 10; float8/float4 inputs are a mul.  Limits: float6 inputs.
    """
    return dequantize(ctx, node)


@composite_op("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear(ctx: LowerContext, node: Node) -> Any:
    """scale = (max(0, max x) - min(0, min x)) / 255; zp = saturate(round(-min(0, min x) / scale));
    y = saturate(round(x / scale) + zp), uint8.

    MIL: reduce_max, reduce_min, maximum, minimum, sub, mul (by 1/255: coremltools' pass turns
    the constant division into this anyway; the scale can move by one ulp), real_div, round,
    clip, add, cast.  Limits: an all-zero x gives scale 0 and a NaN-derived y, as in ONNX.
    """
    x = node.input(0)
    dtype = ctx.np_dtype(x)
    zero = dtype.type(0)
    hi = ctx.mb.maximum(x=ctx.mb.reduce_max(x=x, keep_dims=False), y=zero)
    lo = ctx.mb.minimum(x=ctx.mb.reduce_min(x=x, keep_dims=False), y=zero)
    scale = ctx.mb.real_div(x=ctx.mb.sub(x=hi, y=lo), y=dtype.type(255.0))
    zp = ctx.mb.round(x=ctx.mb.clip(x=ctx.mb.real_div(x=ctx.mb.sub(x=zero, y=lo), y=scale), alpha=zero, beta=dtype.type(255)))
    q = ctx.mb.round(x=ctx.mb.real_div(x=x, y=scale))
    y = quantize_to_int32(ctx, q, zp, 0, 255)
    return y, scale, ctx.cast(zp, np.int32)
