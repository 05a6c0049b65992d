"""Kernels of MIL's tensor operations (coremltools defs: iOS15/16/17 tensor_operation.py).

Ops: band_part, cumsum, fill, fill_like (iOS16), non_maximum_suppression (iOS15; iOS17 form),
non_zero, one_hot, pad, range_1d, tile, argsort, topk (iOS15; iOS16 sort/return_indices;
iOS17 k=-1 and output_indices_dtype), flatten2d, shape, concat, split, stack.
``identity`` is registered with the control-flow kernels.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.executor.kernels.registry import IOS15, IOS16, IOS17, mil_kernel

log = logging.getLogger(__name__)


def _axis(axis: Any, rank: int) -> int:
    a = int(axis)
    return a + rank if a < 0 else a


@mil_kernel("band_part", since=IOS15)
def band_part(x: np.ndarray, lower: Any = -1, upper: Any = -1) -> np.ndarray:
    """y[..., m, n] = x[..., m, n] if (lower<0 or m-n<=lower) and (upper<0 or n-m<=upper) else 0."""
    lo, up = int(lower), int(upper)
    m = np.arange(x.shape[-2])[:, None]
    n = np.arange(x.shape[-1])[None, :]
    keep = ((lo < 0) | (m - n <= lo)) & ((up < 0) | (n - m <= up))
    return np.where(keep, x, np.zeros((), dtype=x.dtype))


@mil_kernel("cumsum", since=IOS15)
def cumsum(x: np.ndarray, axis: Any = 0, exclusive: Any = False, reverse: Any = False) -> np.ndarray:
    """Running sum along ``axis`` (in x's dtype); exclusive shifts by one, reverse sums from the end."""
    ax = _axis(axis, x.ndim)
    data = np.flip(x, axis=ax) if bool(reverse) else x
    out = np.cumsum(data, axis=ax, dtype=x.dtype)
    if bool(exclusive) and out.shape[ax] > 0:
        zero = np.zeros_like(np.take(out, [0], axis=ax))
        out = np.concatenate([zero, np.delete(out, -1, axis=ax)], axis=ax)
    return np.flip(out, axis=ax) if bool(reverse) else out


@mil_kernel("fill", since=IOS15)
def fill(shape: np.ndarray, value: Any = 0.0) -> np.ndarray:
    """A tensor of the given shape, every element ``value``."""
    val = np.asarray(value)
    return np.full(tuple(int(d) for d in np.asarray(shape).reshape(-1)), val, dtype=val.dtype)


@mil_kernel("fill_like", since=IOS16)
def fill_like(ref_tensor: np.ndarray, value: Any = 0.0) -> np.ndarray:
    """A tensor shaped like ``ref_tensor``, every element ``value`` (dtype of value)."""
    val = np.asarray(value)
    return np.full(ref_tensor.shape, val, dtype=val.dtype)


def _iou_matrix(boxes: np.ndarray) -> np.ndarray:
    """Pairwise IoU of [B, 4] boxes given as (center x, center y, width, height)."""
    b = boxes.astype(np.float32)
    x1, x2 = b[:, 0] - 0.5 * b[:, 2], b[:, 0] + 0.5 * b[:, 2]
    y1, y2 = b[:, 1] - 0.5 * b[:, 3], b[:, 1] + 0.5 * b[:, 3]
    iw = np.clip(np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None]), 0, None)
    ih = np.clip(np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None]), 0, None)
    inter = iw * ih
    area = b[:, 2] * b[:, 3]
    union = area[:, None] + area[None] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _nms_one(
    boxes: np.ndarray, scores: np.ndarray, iou: float, score_thr: float, max_boxes: int, per_class: bool
) -> np.ndarray:
    """Selected box indices of one batch item, highest score first (greedy NMS)."""
    n_box = boxes.shape[0]
    if n_box == 0:
        return np.zeros(0, dtype=np.int64)
    best = scores.max(axis=-1).astype(np.float32)
    cls = scores.argmax(axis=-1)
    order = np.argsort(-best, kind="stable")
    order = order[best[order] > score_thr]
    ious = _iou_matrix(boxes)
    suppressed = np.zeros(n_box, dtype=bool)
    keep: list[int] = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        if len(keep) == max_boxes:
            break
        hit = ious[i] > iou
        if per_class:
            hit &= cls == cls[i]
        suppressed |= hit
    if not keep:
        # Core ML returns the top-scoring box when every box falls below the score threshold.
        keep = [int(np.argsort(-best, kind="stable")[0])]
    return np.asarray(keep[:max_boxes], dtype=np.int64)


def _nms(
    boxes: np.ndarray, scores: np.ndarray, iou: float, score_thr: float, max_boxes: int, per_class: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Batched NMS on [n, B, 4] boxes and [n, B, K] scores; pads boxes/scores with 0, indices -1."""
    n, _, k = scores.shape
    out_boxes = np.zeros((n, max_boxes, 4), dtype=boxes.dtype)
    out_scores = np.zeros((n, max_boxes, k), dtype=scores.dtype)
    out_idx = np.full((n, max_boxes), -1, dtype=np.int32)
    counts = np.zeros((n,), dtype=np.int32)
    for b in range(n):
        ids = _nms_one(boxes[b], scores[b], iou, score_thr, max_boxes, per_class)
        out_boxes[b, : len(ids)] = boxes[b, ids]
        out_scores[b, : len(ids)] = scores[b, ids]
        out_idx[b, : len(ids)] = ids
        counts[b] = len(ids)
    return out_boxes, out_scores, out_idx, counts


@mil_kernel("non_maximum_suppression", since=IOS15)
def non_maximum_suppression(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: Any,
    score_threshold: Any,
    max_boxes: Any,
    per_class_suppression: Any = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Greedy NMS: keep boxes by descending max score (> score_threshold), drop IoU > iou_threshold."""
    return _nms(
        boxes, scores, float(iou_threshold), float(score_threshold), int(max_boxes),
        bool(per_class_suppression),
    )


@mil_kernel("non_maximum_suppression", since=IOS17)
def non_maximum_suppression_v17(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: Any,
    max_boxes: Any,
    per_class_suppression: Any = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """iOS17 NMS: boxes [n, 4, B], scores [n, K, B], no score threshold, no count output."""
    out_b, out_s, out_i, _ = _nms(
        np.swapaxes(boxes, 1, 2), np.swapaxes(scores, 1, 2), float(iou_threshold), -np.inf,
        int(max_boxes), bool(per_class_suppression),
    )
    return np.swapaxes(out_b, 1, 2), np.swapaxes(out_s, 1, 2), out_i


@mil_kernel("non_zero", since=IOS15)
def non_zero(x: np.ndarray) -> np.ndarray:
    """[N, rank] int32 coordinates of the non-zero elements, row-major order."""
    return np.argwhere(x).astype(np.int32).reshape(-1, x.ndim)


@mil_kernel("one_hot", since=IOS15)
def one_hot(
    indices: np.ndarray,
    one_hot_vector_size: Any,
    axis: Any = -1,
    on_value: Any = 1,
    off_value: Any = 0,
) -> np.ndarray:
    """y[..., j at axis, ...] = on_value if indices[...] == j else off_value."""
    depth = int(one_hot_vector_size)
    ax = _axis(axis, indices.ndim + 1)
    idx = np.expand_dims(np.asarray(indices), ax)
    shape = [1] * (indices.ndim + 1)
    shape[ax] = depth
    hot = idx == np.arange(depth).reshape(shape)
    on, off = np.asarray(on_value), np.asarray(off_value)
    return np.where(hot, on, off).astype(on.dtype)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}


@mil_kernel("pad", since=IOS15)
def pad(x: np.ndarray, pad: np.ndarray, mode: Any = "constant", constant_val: Any = 0.0) -> np.ndarray:
    """Pads the last len(pad)/2 dims: pad[2i] before and pad[2i+1] after dim i of those."""
    pairs = np.asarray(pad, dtype=np.int64).reshape(-1, 2)
    widths = [(0, 0)] * (x.ndim - len(pairs)) + [(int(a), int(b)) for a, b in pairs]
    np_mode = _PAD_MODES[str(mode)]
    if np_mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=np.asarray(constant_val, x.dtype))
    return np.pad(x, widths, mode=np_mode)  # type: ignore[call-overload]


@mil_kernel("range_1d", since=IOS15)
def range_1d(end: Any, start: Any, step: Any) -> np.ndarray:
    """[start, start+step, ...) up to end exclusive, in the dtype of start."""
    s, e, st = np.asarray(start), np.asarray(end), np.asarray(step)
    count = max(int(np.ceil((float(e) - float(s)) / float(st))), 0)
    return (s + np.arange(count, dtype=s.dtype) * st).astype(s.dtype)


@mil_kernel("tile", since=IOS15)
def tile(x: np.ndarray, reps: np.ndarray) -> np.ndarray:
    """Repeats x reps[i] times along each dim i."""
    return np.tile(x, tuple(int(r) for r in np.asarray(reps).reshape(-1)))


def _sort_indices(x: np.ndarray, axis: int, ascending: bool) -> np.ndarray:
    """Stable sort indices along axis; equal values keep their original order both ways."""
    if ascending:
        return np.argsort(x, axis=axis, kind="stable")
    # Descending and stable: sort the reversed array ascending would flip tie order, so sort keys.
    key = -x.astype(np.float64) if x.dtype.kind in "iub" else -x
    return np.argsort(key, axis=axis, kind="stable")


@mil_kernel("argsort", since=IOS15)
def argsort(x: np.ndarray, axis: Any = -1, ascending: Any = False) -> np.ndarray:
    """int32 indices that sort x along axis (descending by default; ties in index order)."""
    return _sort_indices(x, _axis(axis, x.ndim), bool(ascending)).astype(np.int32)


def _topk(x: np.ndarray, k: int, axis: Any, ascending: Any) -> tuple[np.ndarray, np.ndarray]:
    ax = _axis(axis, x.ndim)
    idx = np.take(_sort_indices(x, ax, bool(ascending)), np.arange(k), axis=ax)
    return np.take_along_axis(x, idx, axis=ax), idx.astype(np.int32)


@mil_kernel("topk", since=IOS15)
def topk(
    x: np.ndarray,
    k: Any = 1,
    axis: Any = -1,
    ascending: Any = False,
    sort: Any = True,
    return_indices: Any = True,
) -> Any:
    """The k largest (smallest if ascending) values along axis and their int32 indices, sorted."""
    # iOS16 adds sort (unsorted order is unspecified, so sorted is valid) and return_indices.
    values, indices = _topk(x, int(k), axis, ascending)
    return (values, indices) if bool(return_indices) else values


@mil_kernel("topk", since=IOS17)
def topk_v17(
    x: np.ndarray,
    k: Any = 1,
    axis: Any = -1,
    ascending: Any = False,
    sort: Any = True,
    return_indices: Any = True,
    output_indices_dtype: Any = "int32",
) -> Any:
    """iOS17 topk: k = -1 selects every element; indices int32 or uint16."""
    kk = int(k)
    if kk == -1:
        kk = x.shape[_axis(axis, x.ndim)]
    values, indices = _topk(x, kk, axis, ascending)
    if not bool(return_indices):
        return values
    return values, indices.astype(np.uint16 if str(output_indices_dtype) == "uint16" else np.int32)


@mil_kernel("flatten2d", since=IOS15)
def flatten2d(x: np.ndarray, axis: Any = 1) -> np.ndarray:
    """Reshape to [prod(shape[:axis]), prod(shape[axis:])]."""
    ax = _axis(axis, x.ndim)
    pre = int(np.prod(x.shape[:ax], dtype=np.int64))
    post = int(np.prod(x.shape[ax:], dtype=np.int64))
    return x.reshape(pre, post)


@mil_kernel("shape", since=IOS15)
def shape(x: np.ndarray) -> np.ndarray:
    """The int32 shape vector of x."""
    return np.asarray(np.shape(x), dtype=np.int32)


@mil_kernel("concat", since=IOS15)
def concat(values: list[np.ndarray], axis: Any, interleave: Any = False) -> np.ndarray:
    """Join along axis; interleave takes one slice from each input in turn (equal shapes)."""
    arrays = [np.asarray(v) for v in values]
    if arrays[0].ndim == 0:
        return np.stack(arrays)
    ax = _axis(axis, arrays[0].ndim)
    if not bool(interleave):
        return np.concatenate(arrays, axis=ax)
    stacked = np.stack(arrays, axis=ax + 1)
    out_shape = list(arrays[0].shape)
    out_shape[ax] *= len(arrays)
    return stacked.reshape(out_shape)


@mil_kernel("split", since=IOS15)
def split(
    x: np.ndarray, axis: Any, num_splits: Any = None, split_sizes: Any = None
) -> list[np.ndarray]:
    """Cut x along axis into num_splits equal parts, or parts of the given split_sizes."""
    ax = _axis(axis, x.ndim)
    if split_sizes is not None:
        sizes = [int(s) for s in np.asarray(split_sizes).reshape(-1)]
    else:
        parts = int(num_splits)
        sizes = [x.shape[ax] // parts] * parts
    cuts = np.cumsum(sizes)[:-1]
    return list(np.split(x, cuts, axis=ax))


@mil_kernel("stack", since=IOS15)
def stack(values: list[np.ndarray], axis: Any) -> np.ndarray:
    """Join equal-shape tensors along a new axis."""
    arrays = [np.asarray(v) for v in values]
    return np.stack(arrays, axis=_axis(axis, arrays[0].ndim + 1))
