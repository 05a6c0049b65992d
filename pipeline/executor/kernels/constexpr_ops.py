"""Kernels of MIL's constexpr (compressed weight) ops.

coremltools defs: iOS16 constexpr_ops.py and iOS18 compression.py.
Ops: constexpr_affine_dequantize, constexpr_cast, constexpr_lut_to_dense (iOS16 packed-bytes form;
iOS18 per-group / vector form), constexpr_sparse_to_dense (iOS16 packed mask + shape; iOS18 uint1
mask tensor), constexpr_blockwise_shift_scale, constexpr_lut_to_sparse,
constexpr_sparse_blockwise_shift_scale (iOS18).

Sub-byte MIL types (uint1..uint6, int4) arrive as uint8/int8 arrays holding one value each.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import ExecutorError
from pipeline.executor.kernels.registry import IOS16, IOS18, mil_kernel

log = logging.getLogger(__name__)


def _along_axis(param: np.ndarray, rank: int, axis: int) -> np.ndarray:
    """A scalar stays a scalar; a vector is shaped to broadcast along ``axis`` of a rank-``rank`` tensor."""
    p = np.asarray(param)
    if p.ndim == 0:
        return p
    shape = [1] * rank
    shape[axis] = p.size
    return p.reshape(shape)


@mil_kernel("constexpr_affine_dequantize", since=IOS16)
def constexpr_affine_dequantize(
    quantized_data: np.ndarray, zero_point: np.ndarray, scale: np.ndarray, axis: Any
) -> np.ndarray:
    """out = scale * (quantized_data - zero_point); vector scale/zero_point run along ``axis``."""
    rank = quantized_data.ndim
    ax = int(axis) % rank
    zp = _along_axis(zero_point, rank, ax).astype(np.float32)
    sc = _along_axis(scale, rank, ax)
    return (sc.astype(np.float32) * (quantized_data.astype(np.float32) - zp)).astype(sc.dtype)


@mil_kernel("constexpr_cast", since=IOS16)
def constexpr_cast(source_val: np.ndarray, output_dtype: Any = "fp32") -> np.ndarray:
    """fp16 constant widened to ``output_dtype`` (only fp32 exists)."""
    if str(output_dtype) != "fp32":
        raise ExecutorError(f"execute: constexpr_cast to {output_dtype!r}; only 'fp32' is defined")
    return np.asarray(source_val).astype(np.float32)


def _unpack_bits(packed: np.ndarray, nbits: int, count: int) -> np.ndarray:
    """``count`` unsigned nbits-wide fields packed LSB-first into bytes (MIL's packing)."""
    bits = np.unpackbits(np.asarray(packed, dtype=np.uint8), bitorder="little")
    fields = bits[: count * nbits].reshape(count, nbits).astype(np.uint16)
    return (fields << np.arange(nbits, dtype=np.uint16)).sum(axis=1)


@mil_kernel("constexpr_lut_to_dense", since=IOS16)
def constexpr_lut_to_dense(indices: np.ndarray, lut: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """out.flat[i] = lut[i-th log2(len(lut))-bit field of the packed ``indices`` bytes]."""
    out_shape = tuple(int(d) for d in np.asarray(shape).reshape(-1))
    nbits = int(np.log2(lut.size))
    count = int(np.prod(out_shape, dtype=np.int64))
    return np.asarray(lut)[_unpack_bits(indices, nbits, count)].reshape(out_shape)


@mil_kernel("constexpr_sparse_to_dense", since=IOS16)
def constexpr_sparse_to_dense(nonzero_data: np.ndarray, mask: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Bit i of the LSB-first packed ``mask`` set: out.flat[i] = next value of nonzero_data, else 0."""
    out_shape = tuple(int(d) for d in np.asarray(shape).reshape(-1))
    count = int(np.prod(out_shape, dtype=np.int64))
    bits = np.unpackbits(np.asarray(mask, dtype=np.uint8), bitorder="little")[:count].astype(bool)
    out = np.zeros(count, dtype=nonzero_data.dtype)
    out[bits] = nonzero_data
    return out.reshape(out_shape)


def _expand_blocks(param: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Repeat each entry of ``param`` over its block so it has ``shape`` (block = shape / param.shape)."""
    out = np.asarray(param)
    for axis, (full, n) in enumerate(zip(shape, out.shape)):
        if full != n:
            out = np.repeat(out, full // n, axis=axis)
    return out


def _shift_scale(data: np.ndarray, scale: np.ndarray, offset: Any) -> np.ndarray:
    """scale * (data - offset), block-wise, in scale's dtype."""
    dt = scale.dtype
    values = data.astype(dt)
    if offset is not None:
        values = values - _expand_blocks(np.asarray(offset).astype(dt), data.shape)
    return (_expand_blocks(scale, data.shape) * values).astype(dt)


@mil_kernel("constexpr_blockwise_shift_scale", since=IOS18)
def constexpr_blockwise_shift_scale(data: np.ndarray, scale: np.ndarray, offset: Any = None) -> np.ndarray:
    """out[i..] = scale[i//block..] * (data[i..] - offset[i//block..]); block = data.shape / scale.shape."""
    return _shift_scale(data, scale, offset)


def _lut_lookup(indices: np.ndarray, lut: np.ndarray, vector_axis: Any) -> np.ndarray:
    """Per-group LUT gather; a VECTOR_SIZE > 1 entry is laid out along ``vector_axis``."""
    idx = np.asarray(indices).astype(np.int64)
    rank = idx.ndim
    groups = []
    for axis in range(rank):
        block = idx.shape[axis] // lut.shape[axis]
        shape = [1] * rank
        shape[axis] = idx.shape[axis]
        groups.append((np.arange(idx.shape[axis]) // block).reshape(shape))
    picked = lut[tuple(groups) + (idx,)]  # indices.shape + (VECTOR_SIZE,)
    vsize = lut.shape[-1]
    if vsize == 1:
        return picked[..., 0]
    if vector_axis is None:
        raise ExecutorError("execute: constexpr_lut_to_dense with vector entries needs vector_axis")
    va = int(vector_axis) % rank
    moved = np.moveaxis(picked, -1, va + 1)
    out_shape = list(idx.shape)
    out_shape[va] *= vsize
    return moved.reshape(out_shape)


@mil_kernel("constexpr_lut_to_dense", since=IOS18)
def constexpr_lut_to_dense_v18(indices: np.ndarray, lut: np.ndarray, vector_axis: Any = None) -> np.ndarray:
    """out = lut[group(i), indices[i], :]; the lut's leading dims split indices into groups."""
    return _lut_lookup(indices, lut, vector_axis)


@mil_kernel("constexpr_sparse_to_dense", since=IOS18)
def constexpr_sparse_to_dense_v18(nonzero_data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """out = nonzero_data scattered (row-major) to the positions where the uint1 ``mask`` is 1."""
    out = np.zeros(mask.shape, dtype=nonzero_data.dtype)
    out[np.asarray(mask) != 0] = nonzero_data
    return out


@mil_kernel("constexpr_lut_to_sparse", since=IOS18)
def constexpr_lut_to_sparse(
    indices_mask: np.ndarray, indices_nonzero_data: np.ndarray, lut: np.ndarray, vector_axis: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """(mask expanded along vector_axis, LUT values of the non-zero entries in row-major order)."""
    mask = np.asarray(indices_mask) != 0
    dense_idx = np.zeros(mask.shape, dtype=np.int64)
    dense_idx[mask] = indices_nonzero_data
    values = _lut_lookup(dense_idx, lut, vector_axis)
    if lut.shape[-1] > 1:
        mask = np.repeat(mask, lut.shape[-1], axis=int(vector_axis))
    return mask.astype(np.uint8), values[mask]


@mil_kernel("constexpr_sparse_blockwise_shift_scale", since=IOS18)
def constexpr_sparse_blockwise_shift_scale(
    data_mask: np.ndarray, nonzero_data: np.ndarray, scale: np.ndarray, offset: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """(data_mask, block-wise scale * (value - offset) of each non-zero entry, row-major)."""
    mask = np.asarray(data_mask) != 0
    dense = np.zeros(mask.shape, dtype=nonzero_data.dtype)
    dense[mask] = nonzero_data
    return mask.astype(np.uint8), _shift_scale(dense, scale, offset)[mask]
