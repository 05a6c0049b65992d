"""Kernels of MIL's image resizing ops (coremltools defs: image_resizing.py).

Ops: upsample_nearest_neighbor, resize_nearest_neighbor, upsample_bilinear (iOS15;
iOS16 ``half_pixel_centers``), resize_bilinear, resize (iOS17), crop, crop_resize (iOS15 ``roi``;
iOS16 ``pad_value``; iOS17 ``boxes``/``box_indices``), affine, resample.

Semantics, written from the MIL docs and checked against the device results in coremltools'
own op tests:

* grid points per ``sampling_mode`` (input size X, output size Y, i = 0..Y-1), clamped to
  [0, X-1]: STRICT_ALIGN_CORNERS ``i*(X-1)/(Y-1)``; ALIGN_CORNERS the same but ``(X-1)/2`` when
  Y == 1; DEFAULT ``i*X/Y``; OFFSET_CORNERS ``(i+0.5)*max(1, X-1)/Y``; UNALIGN_CORNERS
  ``(i+0.5)*X/Y - 0.5``.  Linear modes interpolate between floor and floor+1.
* nearest-neighbour resizing by size/scale picks ``floor(i*X/Y)`` (scale recomputed from sizes);
  iOS17 ``resize`` NEAREST_NEIGHBOR rounds the sampling-mode grid point half up.
* resample/affine: bilinear blends the four neighbours, each out-of-image neighbour taking its
  value from the padding mode (constant value, border clamp, reflection without the edge,
  symmetric with the edge); nearest rounds half up.
* crop_resize: TF crop_and_resize; a sample outside the image is ``pad_value`` (0 before iOS16).

fp16 inputs are interpolated in fp32 and rounded once to fp16.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from pipeline.errors import ExecutorError
from pipeline.executor.kernels.image_sampling import (
    crop_and_resize,
    f32,
    floor_index,
    grid_points,
    linear_along,
    nearest_along,
    sample_grid,
    unnormalize,
)
from pipeline.executor.kernels.registry import IOS16, IOS17, mil_kernel
from pipeline.executor.kernels.tensor_transformation import ints

log = logging.getLogger(__name__)


def _nearest_resize(x: np.ndarray, h_out: int, w_out: int) -> np.ndarray:
    y = nearest_along(x, x.ndim - 2, floor_index(x.shape[-2], h_out))
    return nearest_along(y, x.ndim - 1, floor_index(x.shape[-1], w_out))


@mil_kernel("upsample_nearest_neighbor")
def upsample_nearest_neighbor(
    x: np.ndarray, scale_factor_height: Any = 1, scale_factor_width: Any = 1
) -> np.ndarray:
    """Out size floor(H*sh) x floor(W*sw); out[i] = x[floor(i*H/H_out)]."""
    h_out = math.floor(float(scale_factor_height) * x.shape[-2])
    w_out = math.floor(float(scale_factor_width) * x.shape[-1])
    return _nearest_resize(x, h_out, w_out)


@mil_kernel("resize_nearest_neighbor")
def resize_nearest_neighbor(
    x: np.ndarray, target_size_height: Any, target_size_width: Any
) -> np.ndarray:
    """out[i] = x[floor(i*H/H_out)] on the last two axes."""
    return _nearest_resize(x, int(target_size_height), int(target_size_width))


def _bilinear(x: np.ndarray, h_out: int, w_out: int, mode: str) -> np.ndarray:
    y = linear_along(f32(x), x.ndim - 2, grid_points(mode, x.shape[-2], h_out))
    y = linear_along(y, x.ndim - 1, grid_points(mode, x.shape[-1], w_out))
    return y.astype(x.dtype)


def _upsample_size(x: np.ndarray, sh: Any, sw: Any) -> tuple[int, int]:
    return (math.floor(float(sh) * x.shape[-2]), math.floor(float(sw) * x.shape[-1]))


@mil_kernel("upsample_bilinear")
def upsample_bilinear(
    x: np.ndarray,
    scale_factor_height: Any = 1,
    scale_factor_width: Any = 1,
    align_corners: Any = True,
) -> np.ndarray:
    """Bilinear to floor(H*sh) x floor(W*sw): align_corners -> STRICT_ALIGN, else half-pixel."""
    h, w = _upsample_size(x, scale_factor_height, scale_factor_width)
    return _bilinear(x, h, w, "STRICT_ALIGN_CORNERS" if bool(align_corners) else "UNALIGN_CORNERS")


@mil_kernel("upsample_bilinear", since=IOS16)
def upsample_bilinear_v16(
    x: np.ndarray,
    scale_factor_height: Any = 1,
    scale_factor_width: Any = 1,
    align_corners: Any = True,
    half_pixel_centers: Any = None,
) -> np.ndarray:
    """As iOS15, plus align_corners=False & half_pixel_centers=False -> DEFAULT (i*X/Y)."""
    ac = bool(align_corners)
    hpc = (not ac) if half_pixel_centers is None else bool(half_pixel_centers)
    if ac and hpc:
        raise ExecutorError(
            "execute: upsample_bilinear: align_corners and half_pixel_centers "
            "cannot both be True; set one of them to False"
        )
    mode = "STRICT_ALIGN_CORNERS" if ac else ("UNALIGN_CORNERS" if hpc else "DEFAULT")
    h, w = _upsample_size(x, scale_factor_height, scale_factor_width)
    return _bilinear(x, h, w, mode)


@mil_kernel("resize_bilinear")
def resize_bilinear(
    x: np.ndarray,
    target_size_height: Any = 1,
    target_size_width: Any = 1,
    sampling_mode: Any = "DEFAULT",
) -> np.ndarray:
    """Bilinear resize of the last two axes with the sampling_mode grid."""
    return _bilinear(x, int(target_size_height), int(target_size_width), str(sampling_mode))


@mil_kernel("resize", since=IOS17)
def resize(
    x: np.ndarray,
    shape: np.ndarray,
    resized_dims: Any,
    interpolation_mode: Any = "LINEAR",
    sampling_mode: Any = "DEFAULT",
) -> np.ndarray:
    """Resize the last ``resized_dims`` axes to the last entries of ``shape`` (0 keeps x's)."""
    rd = int(resized_dims)
    target = ints(shape)
    mode, interp = str(sampling_mode), str(interpolation_mode)
    if interp not in ("LINEAR", "NEAREST_NEIGHBOR"):
        raise ExecutorError(
            f"execute: resize interpolation_mode {interp!r} is not LINEAR or NEAREST_NEIGHBOR"
        )
    y = f32(x) if interp == "LINEAR" else x
    for i in range(rd):
        axis = x.ndim - rd + i
        size = target[len(target) - rd + i] or x.shape[axis]
        points = grid_points(mode, x.shape[axis], size)
        if interp == "LINEAR":
            y = linear_along(y, axis, points)
        else:
            y = nearest_along(
                y, axis, np.floor(np.clip(points, 0, x.shape[axis] - 1) + 0.5).astype(np.int64)
            )
    return np.asarray(y).astype(x.dtype)


@mil_kernel("crop")
def crop(x: np.ndarray, crop_height: Any, crop_width: Any) -> np.ndarray:
    """x[..., top:H-bottom, left:W-right]."""
    t, b = ints(crop_height)
    left, right = ints(crop_width)
    return x[..., t : x.shape[-2] - b, left : x.shape[-1] - right]


# -- crop_resize ----------------------------------------------------------------------------


def _crop_resize_roi(
    x: np.ndarray,
    roi: np.ndarray,
    target_height: Any,
    target_width: Any,
    normalized_coordinates: Any,
    spatial_scale: Any,
    box_coordinate_mode: Any,
    sampling_mode: Any,
    pad_value: Any,
) -> np.ndarray:
    r = np.asarray(roi).reshape(roi.shape[0], -1)
    args = (
        int(target_height),
        int(target_width),
        bool(normalized_coordinates),
        float(spatial_scale),
        str(box_coordinate_mode),
        str(sampling_mode),
        float(pad_value),
    )
    nb = x.shape[0]
    if r.shape[1] == 5:  # [batch index, 4 coords] -> [N, 1, C, th, tw]
        out = crop_and_resize(x, r[:, 1:], r[:, 0].astype(np.int64), *args)
        return out[:, None]
    boxes = np.repeat(r, nb, axis=0)  # each box on every image -> [N, B, C, th, tw]
    out = crop_and_resize(x, boxes, np.tile(np.arange(nb), r.shape[0]), *args)
    return out.reshape(r.shape[0], nb, *out.shape[1:])


@mil_kernel("crop_resize")
def crop_resize(
    x: np.ndarray,
    roi: np.ndarray,
    target_height: Any = 1,
    target_width: Any = 1,
    normalized_coordinates: Any = False,
    spatial_scale: Any = 1.0,
    box_coordinate_mode: Any = "CORNERS_HEIGHT_FIRST",
    sampling_mode: Any = "DEFAULT",
) -> np.ndarray:
    """Bilinear crops of each roi box (TF crop_and_resize), [N, B|1, C, th, tw]."""
    return _crop_resize_roi(
        x,
        roi,
        target_height,
        target_width,
        normalized_coordinates,
        spatial_scale,
        box_coordinate_mode,
        sampling_mode,
        0.0,
    )


@mil_kernel("crop_resize", since=IOS16)
def crop_resize_v16(
    x: np.ndarray,
    roi: np.ndarray,
    target_height: Any = 1,
    target_width: Any = 1,
    normalized_coordinates: Any = False,
    spatial_scale: Any = 1.0,
    box_coordinate_mode: Any = "CORNERS_HEIGHT_FIRST",
    sampling_mode: Any = "DEFAULT",
    pad_value: Any = 0.0,
) -> np.ndarray:
    """iOS15 crop_resize with samples outside the image set to pad_value."""
    return _crop_resize_roi(
        x,
        roi,
        target_height,
        target_width,
        normalized_coordinates,
        spatial_scale,
        box_coordinate_mode,
        sampling_mode,
        pad_value,
    )


@mil_kernel("crop_resize", since=IOS17)
def crop_resize_v17(
    x: np.ndarray,
    boxes: np.ndarray,
    box_indices: Any = None,
    target_height: Any = 1,
    target_width: Any = 1,
    normalized_coordinates: Any = False,
    spatial_scale: Any = 1.0,
    box_coordinate_mode: Any = "CORNERS_HEIGHT_FIRST",
    sampling_mode: Any = "DEFAULT",
    pad_value: Any = 0.0,
) -> np.ndarray:
    """Bilinear crop of x[box_indices[n]] inside boxes[n] -> [N, C, th, tw]."""
    b = np.asarray(boxes).reshape(-1, 4)
    idx = np.arange(len(b)) if box_indices is None else np.asarray(box_indices).astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= x.shape[0]):
        raise ExecutorError(
            f"execute: crop_resize box_indices {idx.tolist()} outside [0, "
            f"{x.shape[0]}); fix the indices"
        )
    return crop_and_resize(
        x,
        b,
        idx,
        int(target_height),
        int(target_width),
        bool(normalized_coordinates),
        float(spatial_scale),
        str(box_coordinate_mode),
        str(sampling_mode),
        float(pad_value),
    )


# -- resample / affine ---------------------------------------------------------------------


@mil_kernel("resample")
def resample(
    x: np.ndarray,
    coordinates: np.ndarray,
    sampling_mode: Any,
    padding_mode: Any,
    padding_value: Any,
    coordinates_mode: Any,
    align_corners: Any,
) -> np.ndarray:
    """out[b, c, i, j] = x[b, c] at coordinates[b, i, j] = (x, y) (grid sampling)."""
    c = np.asarray(coordinates, dtype=np.float64)
    ac, cm = bool(align_corners), str(coordinates_mode)
    px = unnormalize(c[..., 0], x.shape[3], cm, ac)
    py = unnormalize(c[..., 1], x.shape[2], cm, ac)
    out = sample_grid(x, px, py, str(sampling_mode), str(padding_mode), float(padding_value))
    return out.astype(x.dtype)


@mil_kernel("affine")
def affine(
    x: np.ndarray,
    transform_matrix: np.ndarray,
    output_height: Any,
    output_width: Any,
    sampling_mode: Any,
    padding_mode: Any,
    padding_value: Any,
    coordinates_mode: Any,
    align_corners: Any,
) -> np.ndarray:
    """Sample x at (x', y') = A @ (x, y, 1) for each output pixel's normalized (x, y)."""
    ho, wo = int(output_height), int(output_width)
    ac, cm = bool(align_corners), str(coordinates_mode)
    if cm != "normalized_minus_one_to_one":
        raise ExecutorError(
            f"execute: affine coordinates_mode {cm!r} is not supported by MIL; "
            "use normalized_minus_one_to_one"
        )

    def norm(n: int) -> np.ndarray:
        i = np.arange(n, dtype=np.float64)
        if ac:
            return -1 + 2 * i / (n - 1) if n > 1 else np.zeros(1)
        return (2 * i + 1) / n - 1

    gx, gy = np.meshgrid(norm(wo), norm(ho))  # [Ho, Wo]
    m = np.broadcast_to(
        np.asarray(transform_matrix, dtype=np.float64).reshape(-1, 6), (x.shape[0], 6)
    )
    cx = m[:, 0, None, None] * gx + m[:, 1, None, None] * gy + m[:, 2, None, None]
    cy = m[:, 3, None, None] * gx + m[:, 4, None, None] * gy + m[:, 5, None, None]
    px, py = unnormalize(cx, x.shape[3], cm, ac), unnormalize(cy, x.shape[2], cm, ac)
    out = sample_grid(x, px, py, str(sampling_mode), str(padding_mode), float(padding_value))
    return out.astype(x.dtype)
