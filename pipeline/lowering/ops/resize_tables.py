"""Conversion-time interpolation tables for Resize/Upsample (numpy only, no MIL).

ONNX Resize is separable: along each resized axis, output sample ``i`` is a fixed linear
combination of input samples.  This module computes that combination for one axis as either an
index vector (nearest: ``y[i] = x[idx[i]]``) or a dense weight matrix ``W[out, in]``
(linear/cubic, antialias, tf_crop_and_resize), following the ONNX spec's
coordinate transformations (opsets 10..19), and the same tables for MIL's native resizing ops so
the handler can prove that a native op computes exactly what the ONNX node computes.

Semantics (ONNX Resize spec; x_o is the source coordinate of output index i):
  half_pixel: (i+0.5)/s-0.5; half_pixel_symmetric: c*(1-n/(s*L)) + (i+0.5)/s - 0.5 (c = L/2);
  pytorch_half_pixel: as half_pixel unless s*L == 1 (then -0.5); align_corners: i*(L-1)/(n-1);
  asymmetric: i/s; tf_crop_and_resize: roi-relative align_corners, outside -> extrapolation.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

log = logging.getLogger(__name__)

#: MIL resize_bilinear/crop_resize sampling modes, as grid point formulas (MIL docs).
MIL_SAMPLING_MODES = ("UNALIGN_CORNERS", "STRICT_ALIGN_CORNERS", "ALIGN_CORNERS", "DEFAULT", "OFFSET_CORNERS")


@dataclasses.dataclass(frozen=True)
class AxisSpec:
    """How one axis is resized: sizes, scale, and the node's interpolation attributes."""

    length: int
    out: int
    scale: float
    mode: str = "nearest"
    transform: str = "half_pixel"
    nearest_mode: str = "round_prefer_floor"
    cubic_a: float = -0.75
    exclude_outside: bool = False
    antialias: bool = False
    roi: tuple[float, float] = (0.0, 1.0)


def source_coords(spec: AxisSpec) -> np.ndarray:
    """x_o for every output index, per the coordinate transformation mode.

    Computed in float32 in the spec's operation order, as onnxruntime does: the rounding of
    nearest modes at exact ties (x_o = k + 0.5) depends on it.
    """
    f = np.float32
    i = np.arange(spec.out, dtype=f)
    length, scale, mode = f(spec.length), f(spec.scale), spec.transform
    if mode == "align_corners":
        # length_resized is the output's length, as the spec text and onnxruntime have it (onnx's
        # python reference uses length * scale, 2.4 for 4 * 0.6: its align_corners downsample
        # node tests disagree with onnxruntime, and we follow onnxruntime).
        return np.zeros_like(i) if spec.out == 1 else i * (length - f(1)) / f(spec.out - 1)
    if mode == "asymmetric":
        return i / scale
    if mode == "tf_crop_and_resize":
        lo, hi = f(spec.roi[0]), f(spec.roi[1])
        if spec.out == 1:
            return np.full_like(i, (hi - lo) * (length - f(1)) / f(2) + lo * (length - f(1)))
        return i * (hi - lo) * (length - f(1)) / f(spec.out - 1) + lo * (length - f(1))
    if mode == "pytorch_half_pixel":
        # The spec says 0 for a length-1 output (the ONNX python reference uses -0.5).
        return np.zeros_like(i) if spec.out == 1 else (i + f(0.5)) / scale - f(0.5)
    if mode == "half_pixel":
        return (i + f(0.5)) / scale - f(0.5)
    if mode == "tf_half_pixel_for_nn":  # opset 11 only
        return (i + f(0.5)) / scale
    if mode == "half_pixel_symmetric":
        adjustment = f(spec.out) / (scale * length)
        offset = (length / f(2)) * (f(1) - adjustment)
        return offset + (i + f(0.5)) / scale - f(0.5)
    raise ValueError(f"unknown coordinate_transformation_mode {mode!r}")


def extrapolated(spec: AxisSpec) -> np.ndarray:
    """Output indices whose source lies outside [0, L-1] (only tf_crop_and_resize extrapolates)."""
    if spec.transform != "tf_crop_and_resize":
        return np.zeros(spec.out, dtype=bool)
    x = source_coords(spec)
    return (x < 0) | (x > spec.length - 1)


def nearest_indices(spec: AxisSpec) -> np.ndarray:
    """idx[i] = rounding of x_o per nearest_mode, clamped to [0, L-1] (int64)."""
    x = source_coords(spec)
    floor = np.floor(x)
    frac = x - floor
    if spec.nearest_mode == "round_prefer_floor":
        idx = np.where(frac <= 0.5, floor, floor + 1)
    elif spec.nearest_mode == "round_prefer_ceil":
        idx = np.where(frac < 0.5, floor, floor + 1)
    elif spec.nearest_mode == "floor":
        idx = floor
    elif spec.nearest_mode == "ceil":
        idx = np.ceil(x)
    else:
        raise ValueError(f"unknown nearest_mode {spec.nearest_mode!r}")
    return np.clip(idx, 0, spec.length - 1).astype(np.int64)


def _cubic_kernel(t: np.ndarray, a: float) -> np.ndarray:
    """Keys cubic convolution kernel with parameter a, evaluated at |t|."""
    t = np.abs(t)
    inner = ((a + 2) * t - (a + 3)) * t * t + 1
    outer = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, inner, np.where(t < 2, outer, 0.0))


def _linear_kernel(t: np.ndarray) -> np.ndarray:
    return np.clip(1 - np.abs(t), 0, None)


def weight_matrix(spec: AxisSpec) -> np.ndarray:
    """W[out, in] (float64) with y = W @ x along the axis, for mode linear/cubic/nearest.

    Taps follow the ONNX reference: a window of n taps around x_o (n = 2 linear, 4 cubic, wider
    when antialiasing a downscale, where the kernel is stretched by 1/s and normalised); taps
    outside [0, L-1] take the edge value, or are dropped and the rest renormalised with
    exclude_outside.  Extrapolated rows (tf_crop_and_resize) are zero.
    """
    length = spec.length
    weights = np.zeros((spec.out, length), dtype=np.float64)
    if spec.mode == "nearest":
        weights[np.arange(spec.out), nearest_indices(spec)] = 1.0
        weights[extrapolated(spec)] = 0.0
        return weights
    x = source_coords(spec).astype(np.float64)
    if spec.mode == "linear" and not spec.antialias:
        x = np.clip(x, 0, length - 1)
    stretch = min(spec.scale, 1.0) if spec.antialias else 1.0
    half = (1.0 if spec.mode == "linear" else 2.0) / stretch
    start = math.floor(-half) + 1  # window offsets start..start+n-1 from floor(x)
    taps = np.arange(start, 1 - start + 1)
    for i, xi in enumerate(x):
        base = math.floor(xi)
        pos = base + taps
        t = (pos - xi) * stretch
        w = _linear_kernel(t) if spec.mode == "linear" else _cubic_kernel(t, spec.cubic_a)
        if spec.antialias:
            w = w / w.sum()
        if spec.exclude_outside:
            w = np.where((pos < 0) | (pos >= length), 0.0, w)
            total = w.sum()
            w = w / (total if total != 0 else 1.0)
        np.add.at(weights[i], np.clip(pos, 0, length - 1), w)
    weights[extrapolated(spec)] = 0.0
    return weights


def mil_grid(mode: str, length: int, out: int) -> np.ndarray:
    """Grid points of a MIL sampling_mode (resize_bilinear docs), clamped to [0, L-1]."""
    i = np.arange(out, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if out == 1:
            grid = np.full_like(i, 0.0 if mode == "STRICT_ALIGN_CORNERS" else (length - 1) / 2)
        else:
            grid = i * (length - 1) / (out - 1)
    elif mode == "DEFAULT":
        grid = i * length / out
    elif mode == "OFFSET_CORNERS":
        grid = (i + 0.5) * max(1, length - 1) / out
    elif mode == "UNALIGN_CORNERS":
        grid = (i + 0.5) * length / out - 0.5
    else:
        raise ValueError(f"unknown MIL sampling mode {mode!r}")
    return np.clip(grid, 0, length - 1)


def mil_linear_matrix(mode: str, length: int, out: int) -> np.ndarray:
    """W[out, in] of MIL bilinear resizing along one axis in sampling ``mode``."""
    grid = mil_grid(mode, length, out)
    lo = np.floor(grid).astype(np.int64)
    hi = np.minimum(lo + 1, length - 1)
    frac = grid - lo
    weights = np.zeros((out, length), dtype=np.float64)
    rows = np.arange(out)
    np.add.at(weights, (rows, lo), 1 - frac)
    np.add.at(weights, (rows, hi), frac)
    return weights


def mil_nearest_indices(length: int, out: int) -> np.ndarray:
    """Source index of MIL resize/upsample_nearest_neighbor: floor(i * L / out)."""
    return (np.arange(out, dtype=np.int64) * length) // out


def same_matrix(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two interpolation tables agree to well below fp32 resolution."""
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=0.0, atol=1e-6))
