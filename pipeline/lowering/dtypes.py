"""Dtype policy of stage two: what each ONNX element type becomes in Core ML.

Core ML has no 64-bit integers or doubles.  int64 becomes int32 and float64 becomes float32;
constant values outside int32 are saturated.  The sentinels exporters use for "to the end"
(INT64_MAX / INT64_MIN in Slice ends, for instance) saturate to INT32_MAX / INT32_MIN, which keeps
their meaning because MIL clamps slice bounds to the dimension; only other out-of-range values
earn a warning, since only they can change a result.  Float8, float4, float8e8m0 and the 4- and
2-bit integers are held exactly in fp32 / int32 (``pipeline.lowering.ops.narrow_types``).
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
from coremltools.converters.mil.mil import types

from pipeline.errors import UnsupportedTypeError

log = logging.getLogger(__name__)

INT32_MIN, INT32_MAX = np.iinfo(np.int32).min, np.iinfo(np.int32).max
INT64_MIN, INT64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max

#: ONNX element type -> the numpy dtype the value has in Core ML.
_LEGAL_NUMPY: dict[int, np.dtype] = {
    onnx.TensorProto.FLOAT: np.dtype(np.float32),
    onnx.TensorProto.FLOAT16: np.dtype(np.float16),
    onnx.TensorProto.DOUBLE: np.dtype(np.float32),
    onnx.TensorProto.BFLOAT16: np.dtype(np.float32),
    onnx.TensorProto.INT64: np.dtype(np.int32),
    onnx.TensorProto.INT32: np.dtype(np.int32),
    # MIL arithmetic takes fp16/fp32/int32 only, so narrow integers compute as int32; the
    # interface casts results back, which reproduces ONNX's wrap-around for add/sub/mul.
    # Quantization handlers cast to int8/uint8 where a MIL op wants them.
    onnx.TensorProto.INT16: np.dtype(np.int32),
    onnx.TensorProto.INT8: np.dtype(np.int32),
    onnx.TensorProto.UINT64: np.dtype(np.int32),
    onnx.TensorProto.UINT32: np.dtype(np.int32),
    onnx.TensorProto.UINT16: np.dtype(np.int32),
    onnx.TensorProto.UINT8: np.dtype(np.int32),
    onnx.TensorProto.BOOL: np.dtype(np.bool_),
    # Types Core ML has no storage for are held in a wider type with their values exactly on
    # the narrow grid (pipeline.lowering.ops.narrow_types): small floats in fp32 (all their
    # values are exact there), 4- and 2-bit integers in int32.
    onnx.TensorProto.FLOAT8E4M3FN: np.dtype(np.float32),
    onnx.TensorProto.FLOAT8E4M3FNUZ: np.dtype(np.float32),
    onnx.TensorProto.FLOAT8E5M2: np.dtype(np.float32),
    onnx.TensorProto.FLOAT8E5M2FNUZ: np.dtype(np.float32),
    onnx.TensorProto.FLOAT8E8M0: np.dtype(np.float32),
    onnx.TensorProto.FLOAT4E2M1: np.dtype(np.float32),
    onnx.TensorProto.INT4: np.dtype(np.int32),
    onnx.TensorProto.UINT4: np.dtype(np.int32),
    onnx.TensorProto.INT2: np.dtype(np.int32),
    onnx.TensorProto.UINT2: np.dtype(np.int32),
}

#: ml_dtypes' narrow types (numpy dtype names) -> the Core ML dtype that holds them exactly.
_HELD = {
    "bfloat16": np.dtype(np.float32),
    "float8_e4m3fn": np.dtype(np.float32),
    "float8_e4m3fnuz": np.dtype(np.float32),
    "float8_e5m2": np.dtype(np.float32),
    "float8_e5m2fnuz": np.dtype(np.float32),
    "float8_e8m0fnu": np.dtype(np.float32),
    "float4_e2m1fn": np.dtype(np.float32),
    "int4": np.dtype(np.int32),
    "uint4": np.dtype(np.int32),
    "int2": np.dtype(np.int32),
    "uint2": np.dtype(np.int32),
}


def onnx_to_numpy(elem_type: int) -> np.dtype:
    """The numpy dtype ONNX uses for ``elem_type`` (before legalization)."""
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))


def legal_numpy(elem_type: int) -> np.dtype:
    """The numpy dtype a value of ONNX type ``elem_type`` has inside the MIL program."""
    try:
        return _LEGAL_NUMPY[elem_type]
    except KeyError:
        name = onnx.TensorProto.DataType.Name(elem_type)
        raise UnsupportedTypeError(
            f"lower: ONNX element type {name} has no Core ML equivalent (Core ML holds fp16, "
            "fp32, int32 and bool; narrower numbers are held in fp32/int32); change the model's type"
        ) from None


def legal_mil(elem_type: int) -> type:
    """The MIL builtin type for ONNX type ``elem_type``."""
    return types.numpy_type_to_builtin_type(legal_numpy(elem_type).type)


def mil_dtype_string(np_dtype: np.dtype) -> str:
    """MIL's dtype string (for ``cast``) of a legal numpy dtype."""
    return {
        "float32": "fp32", "float16": "fp16", "int32": "int32", "int16": "int16",
        "int8": "int8", "uint8": "uint8", "uint16": "uint16", "bool": "bool",
    }[np.dtype(np_dtype).name]


def legalize_array(value: np.ndarray, what: str = "constant") -> tuple[np.ndarray, str | None]:
    """Convert a numpy constant to its Core ML dtype.

    Returns the array and a warning text when values really changed (non-sentinel overflow).
    """
    value = np.asarray(value)
    kind = value.dtype
    if kind == np.float64:
        return value.astype(np.float32), None
    if kind.name in _HELD:
        return value.astype(_HELD[kind.name]), None
    if kind in (np.int8, np.uint8, np.int16, np.uint16):
        return value.astype(np.int32), None
    if kind in (np.int64, np.uint64, np.uint32):
        wide = value.astype(np.int64) if kind != np.uint64 else np.minimum(value, INT64_MAX).astype(np.int64)
        out_of_range = (wide > INT32_MAX) | (wide < INT32_MIN)
        warning = None
        if out_of_range.any():
            sentinel = (wide >= INT64_MAX - 1) | (wide <= INT64_MIN + 1) | (wide == INT32_MAX + 1)
            real = out_of_range & ~sentinel
            if real.any():
                sample = wide[real].ravel()[:3].tolist()
                warning = (
                    f"{what}: {int(real.sum())} int64 value(s) outside int32 saturated "
                    f"(e.g. {sample})"
                )
        return np.clip(wide, INT32_MIN, INT32_MAX).astype(np.int32), warning
    return value, None


def legalize_feed(value: np.ndarray, elem_type: int) -> np.ndarray:
    """An ONNX-typed input array as the Core ML model takes it."""
    arr = np.asarray(value)
    target = legal_numpy(elem_type)
    if arr.dtype == target:
        return arr
    if target == np.int32 and arr.dtype.kind in "iu":
        return np.clip(arr.astype(np.int64), INT32_MIN, INT32_MAX).astype(np.int32)
    return arr.astype(target)
