"""Type conversion: Cast, CastLike.

Inside the MIL program every ONNX type has a legal Core ML dtype (``pipeline.lowering.dtypes``):
int64 and the narrow integers compute as int32, float64 as float32.  A Cast between two ONNX
types with the same legal dtype (int64 -> int32, float64 -> float32) is therefore no op at all.
Float8/float4/e8m0 and 4-/2-bit integers are held in fp32/int32 on their own grid: a cast *from*
them is a cast from the holder, a cast *to* them rounds onto the grid (``narrow_types``).

Spec changes read: Cast 6, 9 (string types), 13 (bfloat16), 19 (float8 types, saturate), 21
(int4/uint4), 23 (float4), 24, 25 (types only); CastLike 15, 19 (saturate), 21, 23, 24, 25.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import onnx

from pipeline.errors import UnsupportedOpError, UnsupportedTypeError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.dtypes import legal_numpy, onnx_to_numpy
from pipeline.lowering.node import Node
from pipeline.lowering.ops.narrow_types import is_narrow, to_narrow
from pipeline.lowering.registry import onnx_op

log = logging.getLogger(__name__)

#: Narrow ONNX integer types (computed as int32) -> (modulus, offset) of their wrap-around.
_WRAP: dict[int, tuple[int, int]] = {
    onnx.TensorProto.UINT8: (256, 0),
    onnx.TensorProto.INT8: (256, 128),
    onnx.TensorProto.UINT16: (65536, 0),
    onnx.TensorProto.INT16: (65536, 32768),
}


def _wrap(ctx: LowerContext, var: Any, to: int) -> Any:
    """Integer ``var`` reduced into the range of the narrow type ``to``: ((v + off) mod m) - off.

    ONNX converts between integer types by keeping the low bits (two's complement), which this
    reproduces exactly in int32.  Costs add/mod/sub (mod only for unsigned types).
    """
    modulus, offset = _WRAP[to]
    if offset:
        var = ctx.mb.add(x=var, y=np.int32(offset))
    var = ctx.mb.mod(x=var, y=np.int32(modulus))
    if offset:
        var = ctx.mb.sub(x=var, y=np.int32(offset))
    return var


def _fits(source: int | None, to: int) -> bool:
    """Whether every value of ONNX integer/bool type ``source`` is representable in ``to``."""
    if source is None:
        return False
    src, dst = onnx_to_numpy(source), onnx_to_numpy(to)
    if src == np.bool_:
        return True
    if src.kind not in "iu":
        return False
    return bool(np.iinfo(dst).min <= np.iinfo(src).min and np.iinfo(src).max <= np.iinfo(dst).max)


def cast_to(ctx: LowerContext, node: Node, target: np.dtype, onnx_type: int | None = None) -> Any:
    """Input 0 converted to the legal dtype ``target`` with ONNX's Cast semantics.

    Float to integer truncates toward zero (MIL cast, numpy ``astype``); anything to bool is
    ``x != 0``; an integer narrowed to int8/uint8/int16/uint16 wraps around like ONNX (skipped
    when the model declares a source type that already fits, e.g. uint8 -> int16); float8,
    float4, e8m0, int4/int2 targets round onto their grid (``saturate``, ``round_mode``).
    """
    x = node.input(0)
    if is_narrow(onnx_type) and onnx_type is not None:
        if ctx.onnx_type(node.input_names[0]) == onnx_type:
            return ctx.cast(x, target)
        saturate = bool(node.attrs.get("saturate", 1))
        return to_narrow(ctx, x, onnx_type, saturate, str(node.attrs.get("round_mode", "up")))
    source = ctx.np_dtype(x)
    xval = ctx.value_of(x)
    if xval is not None:
        exact = onnx_to_numpy(onnx_type) if onnx_type is not None else target
        return ctx.const(xval.astype(exact))
    y = ctx.cast(x, target)
    if onnx_type in _WRAP and source.kind in "iu" and not _fits(ctx.onnx_type(node.input_names[0]), onnx_type):
        y = _wrap(ctx, y, onnx_type)
    return y


@onnx_op("Cast", since=6)
def cast(ctx: LowerContext, node: Node) -> Any:
    """y = x converted to type ``to``.  MIL: cast (nothing when source and target share a Core ML dtype).

    Limits: string and complex targets have no Core ML form; uint32/uint64 values above
    INT32_MAX cannot be held (int32 inside the program).
    """
    to = int(node.attrs["to"])
    try:
        target = legal_numpy(to)
    except UnsupportedTypeError:
        name = onnx.TensorProto.DataType.Name(to)
        raise UnsupportedOpError(
            f"lower: {node.describe()}: cast to {name} has no Core ML type; remove the cast or "
            "cast to a numeric type in the model"
        ) from None
    return cast_to(ctx, node, target, to)


@onnx_op("CastLike", since=15)
def cast_like(ctx: LowerContext, node: Node) -> Any:
    """y = x converted to the type of target_type.  MIL: cast (nothing when the Core ML dtypes match).

    Limits: when the model does not declare target_type's ONNX type (no value_info), the target
    is known by its Core ML dtype only and a narrow integer target converts without wrap-around.
    """
    to = ctx.onnx_type(node.input_names[1])
    return cast_to(ctx, node, ctx.np_dtype(node.input(1)), to)
