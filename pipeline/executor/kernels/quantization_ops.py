"""Kernels of MIL's activation quantization ops (coremltools defs: iOS17 quantization_ops.py).

Ops: quantize, dequantize (iOS17; unchanged through iOS18).  A scalar scale/zero_point applies to
the whole tensor; vectors run along ``axis``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import ExecutorError
from pipeline.executor.kernels.registry import IOS17, mil_kernel

log = logging.getLogger(__name__)

_INT_RANGES = {"int8": (np.int8, -128, 127), "uint8": (np.uint8, 0, 255)}


def _broadcast(param: Any, rank: int, axis: Any) -> np.ndarray:
    """Scalars stay scalars; a vector is shaped to run along ``axis``."""
    p = np.asarray(param)
    if p.ndim == 0:
        return p
    shape = [1] * rank
    shape[int(axis) % rank] = p.size
    return p.reshape(shape)


@mil_kernel("quantize", since=IOS17)
def quantize(
    input: np.ndarray, scale: np.ndarray, output_dtype: Any, zero_point: Any = None, axis: Any = None
) -> np.ndarray:
    """q = clip(round_half_even(input / scale) + zero_point) to the range of ``output_dtype``."""
    if str(output_dtype) not in _INT_RANGES:
        raise ExecutorError(f"execute: quantize output_dtype {output_dtype!r}; use 'int8' or 'uint8'")
    np_dt, lo, hi = _INT_RANGES[str(output_dtype)]
    rank = input.ndim
    # Divide in the input's precision (fp16 stays fp16), round, then shift and clip exactly.
    q = np.round(input / _broadcast(scale, rank, axis).astype(input.dtype)).astype(np.float32)
    if zero_point is not None:
        q = q + _broadcast(zero_point, rank, axis).astype(np.float32)
    return np.clip(q, lo, hi).astype(np_dt)


@mil_kernel("dequantize", since=IOS17)
def dequantize(input: np.ndarray, scale: np.ndarray, zero_point: Any = None, axis: Any = None) -> np.ndarray:
    """x = scale * (input - zero_point), in the dtype of scale."""
    rank = input.ndim
    sc = _broadcast(scale, rank, axis)
    centred = input.astype(np.float32)
    if zero_point is not None:
        centred = centred - _broadcast(zero_point, rank, axis).astype(np.float32)
    return (centred.astype(sc.dtype) * sc).astype(sc.dtype)
