"""Kernels of MIL's tensor transformation ops (coremltools defs: tensor_transformation.py).

Ops: depth_to_space, space_to_depth, pixel_shuffle, pixel_unshuffle, space_to_batch,
batch_to_space, expand_dims, squeeze, reshape (iOS15; iOS17 ``0`` semantics), reshape_like,
transpose, reverse, reverse_sequence, slice_by_index, slice_by_size, slice_update (iOS18),
sliding_windows.

Every kernel only moves data, so the dtype of ``x`` is kept as is (fp16 stays fp16).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import ExecutorError
from pipeline.executor.kernels.registry import IOS16, IOS17, IOS18, mil_kernel

log = logging.getLogger(__name__)


def ints(value: Any) -> list[int]:
    """A const int tensor (or scalar, or list of 0-d arrays) as a flat list of Python ints."""
    if isinstance(value, (list, tuple)):
        return [int(v) for item in value for v in np.asarray(item).reshape(-1)]
    return [int(v) for v in np.asarray(value).reshape(-1)]


def bools(value: Any, n: int) -> list[bool]:
    """An optional const bool mask as a list of ``n`` bools (None means all False)."""
    if value is None:
        return [False] * n
    return [bool(v) for v in np.asarray(value).reshape(-1)]


def index_tuple(
    shape: tuple[int, ...],
    begin: Any,
    end: Any,
    stride: Any = None,
    begin_mask: Any = None,
    end_mask: Any = None,
    squeeze_mask: Any = None,
) -> tuple[Any, ...]:
    """numpy index for MIL's slice_by_index: x[begin:end:stride] per axis, masks as in the doc."""
    rank = len(shape)
    b, e = ints(begin), ints(end)
    s = ints(stride) if stride is not None else [1] * rank
    bm, em, sm = bools(begin_mask, rank), bools(end_mask, rank), bools(squeeze_mask, rank)
    index: list[Any] = []
    for axis in range(rank):
        if sm[axis]:
            index.append(b[axis] + shape[axis] if b[axis] < 0 else b[axis])
            continue
        start = None if bm[axis] else b[axis]
        stop = None if em[axis] else e[axis]
        index.append(slice(start, stop, s[axis]))
    return tuple(index)


@mil_kernel("depth_to_space")
def depth_to_space(x: np.ndarray, block_size: Any) -> np.ndarray:
    """[n, C*b*b, H, W] -> [n, C, H*b, W*b]; channel = (i*b + j)*C + c (TF DCR order)."""
    bs = int(block_size)
    n, c, h, w = x.shape
    y = x.reshape(n, bs, bs, c // (bs * bs), h, w).transpose(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (bs * bs), h * bs, w * bs)


@mil_kernel("space_to_depth")
def space_to_depth(x: np.ndarray, block_size: Any) -> np.ndarray:
    """[n, C, H*b, W*b] -> [n, C*b*b, H, W]; inverse of depth_to_space (DCR order)."""
    bs = int(block_size)
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // bs, bs, w // bs, bs).transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * bs * bs, h // bs, w // bs)


@mil_kernel("pixel_shuffle")
def pixel_shuffle(x: np.ndarray, upscale_factor: Any) -> np.ndarray:
    """PyTorch PixelShuffle: channel = c*f*f + i*f + j (CRD order) -> [n, C, H*f, W*f]."""
    f = int(upscale_factor)
    *lead, c, h, w = x.shape
    y = x.reshape(*lead, c // (f * f), f, f, h, w)
    k = len(lead)
    y = y.transpose(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return y.reshape(*lead, c // (f * f), h * f, w * f)


@mil_kernel("pixel_unshuffle", since=IOS16)
def pixel_unshuffle(x: np.ndarray, downscale_factor: Any) -> np.ndarray:
    """PyTorch PixelUnshuffle: [n, C, H*f, W*f] -> [n, C*f*f, H, W], inverse of pixel_shuffle."""
    f = int(downscale_factor)
    *lead, c, h, w = x.shape
    y = x.reshape(*lead, c, h // f, f, w // f, f)
    k = len(lead)
    y = y.transpose(*range(k), k, k + 2, k + 4, k + 1, k + 3)
    return y.reshape(*lead, c * f * f, h // f, w // f)


@mil_kernel("space_to_batch")
def space_to_batch(x: np.ndarray, block_shape: Any, paddings: Any) -> np.ndarray:
    """TF SpaceToBatchND on [n, C, H, W]: pad H/W, move block offsets to the batch (major)."""
    b0, b1 = ints(block_shape)
    p = ints(paddings)
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[1]), (p[2], p[3])))
    n, c, h, w = xp.shape
    y = xp.reshape(n, c, h // b0, b0, w // b1, b1).transpose(3, 5, 0, 1, 2, 4)
    return y.reshape(b0 * b1 * n, c, h // b0, w // b1)


@mil_kernel("batch_to_space")
def batch_to_space(x: np.ndarray, block_shape: Any, crops: Any) -> np.ndarray:
    """TF BatchToSpaceND on [n, C, H, W]: inverse of space_to_batch, then crop H/W."""
    b0, b1 = ints(block_shape)
    cr = ints(crops)
    nb, c, h, w = x.shape
    n = nb // (b0 * b1)
    y = x.reshape(b0, b1, n, c, h, w).transpose(2, 3, 4, 0, 5, 1).reshape(n, c, h * b0, w * b1)
    return y[:, :, cr[0] : h * b0 - cr[1], cr[2] : w * b1 - cr[3]]


@mil_kernel("expand_dims")
def expand_dims(x: np.ndarray, axes: Any) -> np.ndarray:
    """Insert size-1 axes; negative axes count in the output rank."""
    return np.expand_dims(x, tuple(ints(axes)))


@mil_kernel("squeeze")
def squeeze(x: np.ndarray, axes: Any = None) -> np.ndarray:
    """Drop the given size-1 axes (all size-1 axes when ``axes`` is absent)."""
    if axes is None:
        return np.squeeze(x)
    return np.squeeze(x, axis=tuple(ints(axes)))


def _reshape(x: np.ndarray, shape: Any, *, zeros_from_right: bool) -> np.ndarray:
    target = ints(shape)
    if 0 in target:
        if zeros_from_right:
            # iOS17: a 0 copies the x dim aligned from the right; a 0 without one becomes 1.
            off = x.ndim - len(target)
            target = [
                (x.shape[i + off] if i + off >= 0 else 1) if d == 0 else d
                for i, d in enumerate(target)
            ]
        elif len(target) == x.ndim:
            target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
        else:
            raise ExecutorError(
                f"execute: reshape (iOS15) shape {target} has a 0 but its length differs from "
                f"rank {x.ndim} of x; use the iOS17 opset or give explicit sizes"
            )
    return x.reshape(target)


@mil_kernel("reshape")
def reshape(x: np.ndarray, shape: Any) -> np.ndarray:
    """Reshape; -1 inferred, 0 copies x's dim (only when len(shape) == rank(x))."""
    return _reshape(x, shape, zeros_from_right=False)


@mil_kernel("reshape", since=IOS17)
def reshape_v17(x: np.ndarray, shape: Any) -> np.ndarray:
    """Reshape; 0 matches x's dims from the right, out-of-range 0 means 1."""
    return _reshape(x, shape, zeros_from_right=True)


@mil_kernel("reshape_like", since=IOS16)
def reshape_like(
    x: np.ndarray, ref_tensors: list[np.ndarray], begins: Any, ends: Any, end_masks: Any
) -> np.ndarray:
    """Reshape to concat(ref_i.shape[begin_i:end_i or None]) over the reference tensors."""
    b, e = ints(begins), ints(ends)
    masks = [bool(np.asarray(m)) for m in end_masks]
    shape: list[int] = []
    for ref, start, stop, full in zip(ref_tensors, b, e, masks):
        dims = list(np.shape(ref))
        shape += dims[start:] if full else dims[start:stop]
    return x.reshape(shape)


@mil_kernel("transpose")
def transpose(x: np.ndarray, perm: Any) -> np.ndarray:
    """out.shape[i] = x.shape[perm[i]]."""
    return np.transpose(x, ints(perm))


@mil_kernel("reverse")
def reverse(x: np.ndarray, axes: Any = None) -> np.ndarray:
    """Flip along ``axes`` (all axes when absent)."""
    if axes is None:
        return np.flip(x)
    return np.flip(x, axis=tuple(ints(axes)))


@mil_kernel("reverse_sequence")
def reverse_sequence(
    x: np.ndarray, lengths: np.ndarray, seq_axis: Any = 0, batch_axis: Any = 0
) -> np.ndarray:
    """For each b along batch_axis, reverse the first lengths[b] entries along seq_axis."""
    sa, ba = int(seq_axis) % x.ndim, int(batch_axis) % x.ndim
    t = np.arange(x.shape[sa])
    lens = np.asarray(lengths).astype(np.int64).reshape(-1, 1)
    idx = np.where(t[None, :] < lens, lens - 1 - t[None, :], t[None, :])  # [B, T]
    if ba > sa:
        idx = idx.T
    shape = [1] * x.ndim
    shape[sa], shape[ba] = x.shape[sa], x.shape[ba]
    idx = np.broadcast_to(idx.reshape(shape), x.shape)
    return np.take_along_axis(x, idx, axis=sa)


@mil_kernel("slice_by_index")
def slice_by_index(
    x: np.ndarray,
    begin: Any,
    end: Any,
    stride: Any = None,
    begin_mask: Any = None,
    end_mask: Any = None,
    squeeze_mask: Any = None,
) -> np.ndarray:
    """numpy x[begin:end:stride] per axis; masked begin/end are open; squeezed axes index."""
    return np.asarray(
        x[index_tuple(x.shape, begin, end, stride, begin_mask, end_mask, squeeze_mask)]
    )


@mil_kernel("slice_by_size")
def slice_by_size(x: np.ndarray, begin: Any, size: Any) -> np.ndarray:
    """x[begin[i] : begin[i] + size[i]] per axis; size -1 runs to the end."""
    index = []
    for dim, start, length in zip(x.shape, ints(begin), ints(size)):
        start = start + dim if start < 0 else start
        index.append(slice(start, None if length == -1 else start + length))
    return np.asarray(x[tuple(index)])


@mil_kernel("slice_update", since=IOS18)
def slice_update(
    x: np.ndarray,
    update: np.ndarray,
    begin: Any,
    end: Any,
    stride: Any = None,
    begin_mask: Any = None,
    end_mask: Any = None,
    squeeze_mask: Any = None,
) -> np.ndarray:
    """out = x; out[slice_by_index(...)] = update."""
    out = np.array(x, copy=True)
    index = index_tuple(x.shape, begin, end, stride, begin_mask, end_mask, squeeze_mask)
    target_shape = out[index].shape
    if tuple(np.shape(update)) != tuple(target_shape):
        raise ExecutorError(
            f"execute: slice_update update shape {np.shape(update)} does not match the slice "
            f"shape {target_shape}; fix the update or the slice bounds"
        )
    out[index] = update
    return out


@mil_kernel("sliding_windows")
def sliding_windows(x: np.ndarray, axis: Any, size: Any, stride: Any = 1) -> np.ndarray:
    """out[..., i, k, ...] = x[..., i*stride + k, ...]: windows of ``size`` inserted after axis."""
    ax, sz, st = int(axis) % x.ndim, int(size), int(stride)
    windows = np.lib.stride_tricks.sliding_window_view(x, sz, axis=ax)  # window dim last
    windows = np.moveaxis(windows, -1, ax + 1)
    index = [slice(None)] * windows.ndim
    index[ax] = slice(None, None, st)
    return np.ascontiguousarray(windows[tuple(index)])
