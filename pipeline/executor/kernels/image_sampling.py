"""Sampling arithmetic shared by the image resizing kernels (no kernels registered here).

Holds: sampling-mode grid points, 1-D linear interpolation, crop_resize box geometry and
bilinear crop sampling (TF crop_and_resize), and grid sampling with padding modes for
resample/affine.  The semantics are documented in ``image_resizing``.
"""

from __future__ import annotations

import numpy as np

from pipeline.errors import ExecutorError

SAMPLING_MODES = (
    "STRICT_ALIGN_CORNERS",
    "ALIGN_CORNERS",
    "DEFAULT",
    "OFFSET_CORNERS",
    "UNALIGN_CORNERS",
)


def grid_points(mode: str, x_in: float, y_out: int) -> np.ndarray:
    """Unclamped sample positions (in input pixel units) of ``y_out`` outputs over ``x_in``."""
    i = np.arange(y_out, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if y_out == 1:
            return np.full(1, (x_in - 1) / 2 if mode == "ALIGN_CORNERS" else 0.0)
        return i * (x_in - 1) / (y_out - 1)
    if mode == "DEFAULT":
        return i * x_in / y_out
    if mode == "OFFSET_CORNERS":
        delta = max(1.0, x_in - 1) / y_out
        return 0.5 * delta + i * delta
    if mode == "UNALIGN_CORNERS":
        return (i + 0.5) * x_in / y_out - 0.5
    raise ExecutorError(f"execute: sampling_mode {mode!r} is not one of {SAMPLING_MODES}")


def linear_along(x: np.ndarray, axis: int, points: np.ndarray) -> np.ndarray:
    """Linear interpolation of x along axis at positions clamped to [0, n-1]."""
    n = x.shape[axis]
    g = np.clip(points, 0, n - 1)
    lo = np.floor(g).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    shape = [1] * x.ndim
    shape[axis] = len(g)
    w = (g - lo).astype(np.float32).reshape(shape)
    return np.take(x, lo, axis=axis) * (1 - w) + np.take(x, hi, axis=axis) * w


def nearest_along(x: np.ndarray, axis: int, index: np.ndarray) -> np.ndarray:
    return np.take(x, np.clip(index, 0, x.shape[axis] - 1), axis=axis)


def floor_index(x_in: int, y_out: int) -> np.ndarray:
    return np.floor(np.arange(y_out) * (x_in / y_out)).astype(np.int64)


def f32(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _box_corners(boxes: np.ndarray, mode: str) -> tuple[np.ndarray, ...]:
    """(h_start, w_start, h_end, w_end) columns from [N, 4] boxes in ``box_coordinate_mode``."""
    b = boxes.astype(np.float64)
    if mode == "CORNERS_HEIGHT_FIRST":
        return b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    if mode == "CORNERS_WIDTH_FIRST":
        return b[:, 1], b[:, 0], b[:, 3], b[:, 2]
    if mode in ("CENTER_SIZE_HEIGHT_FIRST", "CENTER_SIZE_WIDTH_FIRST"):
        hc, wc, hs, ws = (
            (b[:, 0], b[:, 1], b[:, 2], b[:, 3])
            if mode.endswith("HEIGHT_FIRST")
            else (b[:, 1], b[:, 0], b[:, 3], b[:, 2])
        )
        return hc - hs / 2, wc - ws / 2, hc + hs / 2, wc + ws / 2
    raise ExecutorError(f"execute: crop_resize box_coordinate_mode {mode!r} is not valid")


def _box_points(start: np.ndarray, end: np.ndarray, size: int, mode: str) -> np.ndarray:
    """[N, size] sample positions inside each box: the box spans (end-start+1) pixels."""
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if size == 1:
            frac = 0.5 if mode == "ALIGN_CORNERS" else 0.0
            return (start + frac * (end - start))[:, None]
        return start[:, None] + np.arange(size)[None, :] * ((end - start) / (size - 1))[:, None]
    rows = [grid_points(mode, float(e - s + 1), size) + s for s, e in zip(start, end)]
    return np.stack(rows) if rows else np.zeros((0, size))


def crop_and_resize(
    x: np.ndarray,
    boxes: np.ndarray,
    index: np.ndarray,
    th: int,
    tw: int,
    normalized: bool,
    spatial_scale: float,
    box_mode: str,
    mode: str,
    pad_value: float,
) -> np.ndarray:
    """[N, C, th, tw]: bilinear samples of x[index[n]] inside box n."""
    _, _, h, w = x.shape
    hs, ws, he, we = _box_corners(boxes, box_mode)
    sy, sx = (h - 1, w - 1) if normalized else (1, 1)
    hs, he = hs * sy * spatial_scale, he * sy * spatial_scale
    ws, we = ws * sx * spatial_scale, we * sx * spatial_scale
    ys, xs = _box_points(hs, he, th, mode), _box_points(ws, we, tw, mode)  # [N, th], [N, tw]
    img = f32(x)[index]  # [N, C, H, W]
    y0 = np.floor(np.clip(ys, 0, h - 1)).astype(np.int64)
    x0 = np.floor(np.clip(xs, 0, w - 1)).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy = (np.clip(ys, 0, h - 1) - y0).astype(np.float32)[:, None, :, None]
    wx = (np.clip(xs, 0, w - 1) - x0).astype(np.float32)[:, None, None, :]
    n = np.arange(len(index))[:, None, None]

    def at(yi: np.ndarray, xi: np.ndarray) -> np.ndarray:
        return img[n, :, yi[:, :, None], xi[:, None, :]].transpose(0, 3, 1, 2)

    top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    out = top * (1 - wy) + bottom * wy
    inside = ((ys >= 0) & (ys <= h - 1))[:, None, :, None] & ((xs >= 0) & (xs <= w - 1))[
        :, None, None, :
    ]
    return np.where(inside, out, np.float32(pad_value)).astype(x.dtype)


def pad_index(i: np.ndarray, n: int, padding_mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Map integer pixel indices into [0, n) by padding mode; also the in-image mask."""
    inside = (i >= 0) & (i < n)
    if padding_mode == "constant" or padding_mode == "border":
        return np.clip(i, 0, n - 1), inside
    if padding_mode == "reflection":
        if n == 1:
            return np.zeros_like(i), inside
        period = 2 * (n - 1)
        m = np.mod(i, period)
        return np.where(m >= n, period - m, m), inside
    if padding_mode == "symmetric":
        m = np.mod(i, 2 * n)
        return np.where(m >= n, 2 * n - 1 - m, m), inside
    raise ExecutorError(
        f"execute: padding_mode {padding_mode!r} is not constant/border/reflection/symmetric"
    )


def unnormalize(c: np.ndarray, n: int, coordinates_mode: str, align_corners: bool) -> np.ndarray:
    if coordinates_mode == "unnormalized":
        return c
    if coordinates_mode == "normalized_minus_one_to_one":
        return (c + 1) / 2 * (n - 1) if align_corners else ((c + 1) * n - 1) / 2
    if coordinates_mode == "normalized_zero_to_one":
        return c * (n - 1) if align_corners else c * n - 0.5
    raise ExecutorError(
        f"execute: coordinates_mode {coordinates_mode!r} is not unnormalized/"
        "normalized_minus_one_to_one/normalized_zero_to_one"
    )


def sample_grid(
    x: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    sampling_mode: str,
    padding_mode: str,
    padding_value: float,
) -> np.ndarray:
    """out[b, c, i, j] = x[b, c] sampled at pixel (py[b, i, j], px[b, i, j])."""
    _, _, h, w = x.shape
    img = f32(x)
    bidx = np.arange(x.shape[0])[:, None, None]
    pad = padding_mode.lower()

    def at(yi: np.ndarray, xi: np.ndarray) -> np.ndarray:
        ym, yin = pad_index(yi, h, pad)
        xm, xin = pad_index(xi, w, pad)
        v = img[bidx, :, ym, xm].transpose(0, 3, 1, 2)  # [B, C, Ho, Wo]
        if pad == "constant":
            v = np.where((yin & xin)[:, None], v, np.float32(padding_value))
        return v

    mode = sampling_mode.lower()
    if mode == "nearest":
        return at(np.floor(py + 0.5).astype(np.int64), np.floor(px + 0.5).astype(np.int64))
    if mode != "bilinear":
        raise ExecutorError(f"execute: sampling_mode {sampling_mode!r} is not bilinear/nearest")
    x0, y0 = np.floor(px).astype(np.int64), np.floor(py).astype(np.int64)
    wx = (px - x0).astype(np.float32)[:, None]
    wy = (py - y0).astype(np.float32)[:, None]
    top = at(y0, x0) * (1 - wx) + at(y0, x0 + 1) * wx
    bottom = at(y0 + 1, x0) * (1 - wx) + at(y0 + 1, x0 + 1) * wx
    return top * (1 - wy) + bottom * wy
