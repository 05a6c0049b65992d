"""Executor kernels of MIL image resizing ops.

References: torch.nn.functional.interpolate / grid_sample / affine_grid, numpy ``np.interp`` on
grid points written from the MIL doc, the grid-point tables printed in the MIL doc, and the
device results recorded in coremltools' own op tests (values Apple measured on Core ML).
"""

from __future__ import annotations

import coremltools as ct
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

from tests.executor.support import rand, run, run1, tol

FLOATS = [(np.float32, types.fp32), (np.float16, types.fp16)]


def spec(shape: tuple[int, ...], dtype: object = types.fp32) -> object:
    return mb.TensorSpec(shape=shape, dtype=dtype)


def close(out: np.ndarray, ref: np.ndarray, np_dt: type = np.float32) -> None:
    assert out.dtype == np_dt and out.shape == ref.shape
    np.testing.assert_allclose(
        out.astype(np.float32), np.asarray(ref).astype(np_dt).astype(np.float32), **tol(np_dt)
    )


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
def test_upsample_nearest_integer_scales_match_torch(np_dt, mil_dt) -> None:
    @mb.program(input_specs=[spec((2, 3, 4, 5), mil_dt)], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.upsample_nearest_neighbor(x=x, scale_factor_height=2, scale_factor_width=3)

    x = rand(2, 3, 4, 5, dtype=np_dt)
    ref = F.interpolate(torch.from_numpy(x.astype(np.float32)), scale_factor=(2, 3), mode="nearest")
    close(run1(prog, x=x), ref.numpy(), np_dt)


def test_upsample_nearest_fractional_scales_device_values() -> None:
    # coremltools TestUpsampleNearestNeighborFractionalScales (CPU device results).
    @mb.program(input_specs=[spec((1, 1, 1, 3))], opset_version=ct.target.iOS15)
    def prog(x):
        return (
            mb.upsample_nearest_neighbor(x=x, scale_factor_height=3.17, scale_factor_width=0.67),
            mb.upsample_nearest_neighbor(x=x, scale_factor_height=2.0, scale_factor_width=1.12),
        )

    x = np.array([1.5, -2.5, 3.5], np.float32).reshape(1, 1, 1, 3)
    a, b = run(prog, x=x)
    close(a, np.array([1.5, -2.5] * 3, np.float32).reshape(1, 1, 3, 2))
    close(b, np.array([1.5, -2.5, 3.5] * 2, np.float32).reshape(1, 1, 2, 3))


def test_resize_nearest_neighbor_matches_torch() -> None:
    @mb.program(input_specs=[spec((1, 2, 5, 7))], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.resize_nearest_neighbor(x=x, target_size_height=8, target_size_width=3)

    x = rand(1, 2, 5, 7)
    ref = F.interpolate(torch.from_numpy(x), size=(8, 3), mode="nearest").numpy()
    close(run1(prog, x=x), ref)


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
@pytest.mark.parametrize("align_corners", [True, False])
def test_upsample_bilinear_ios15_matches_torch(np_dt, mil_dt, align_corners) -> None:
    @mb.program(input_specs=[spec((1, 2, 3, 4), mil_dt)], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.upsample_bilinear(
            x=x, scale_factor_height=2.0, scale_factor_width=2.5, align_corners=align_corners
        )

    x = rand(1, 2, 3, 4, dtype=np_dt)
    ref = F.interpolate(
        torch.from_numpy(x.astype(np.float32)),
        size=(6, 10),
        mode="bilinear",
        align_corners=align_corners,
    ).numpy()
    close(run1(prog, x=x), ref, np_dt)


@pytest.mark.parametrize(
    "align_corners,half_pixel,row",
    [
        (True, False, [1.0, 1.2, 1.4, 1.6, 1.8, 2.0]),
        (False, True, [1.0, 1.0, 1.33334, 1.66667, 2.0, 2.0]),
        (False, None, [1.0, 1.0, 1.33334, 1.66667, 2.0, 2.0]),
        (False, False, [1.0, 1.33334, 1.66667, 2.0, 2.0, 2.0]),
    ],
)
def test_upsample_bilinear_ios16_half_pixel_centers_device_values(
    align_corners, half_pixel, row
) -> None:
    # coremltools iOS16 TestUpsampleBilinear device results.
    kw = {} if half_pixel is None else {"half_pixel_centers": half_pixel}

    @mb.program(input_specs=[spec((1, 1, 1, 2))], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.upsample_bilinear(
            x=x, scale_factor_height=2, scale_factor_width=3, align_corners=align_corners, **kw
        )

    out = run1(prog, x=np.array([1, 2], np.float32).reshape(1, 1, 1, 2))
    np.testing.assert_allclose(out, np.array(row * 2, np.float32).reshape(1, 1, 2, 6), atol=1e-5)


# Grid points the MIL doc lists for Xin = 2 (input [0, 1] samples its own coordinate).
DOC_GRIDS = {
    ("UNALIGN_CORNERS", 5): [0.0, 0.1, 0.5, 0.9, 1.0],
    ("STRICT_ALIGN_CORNERS", 5): [0.0, 0.25, 0.5, 0.75, 1.0],
    ("ALIGN_CORNERS", 5): [0.0, 0.25, 0.5, 0.75, 1.0],
    ("DEFAULT", 5): [0.0, 0.4, 0.8, 1.0, 1.0],
    ("OFFSET_CORNERS", 5): [0.1, 0.3, 0.5, 0.7, 0.9],
    ("UNALIGN_CORNERS", 6): [0.0, 0.0, 1 / 3, 2 / 3, 1.0, 1.0],
    ("ALIGN_CORNERS", 6): [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
    ("DEFAULT", 6): [0.0, 1 / 3, 2 / 3, 1.0, 1.0, 1.0],
    ("OFFSET_CORNERS", 6): [1 / 12, 0.25, 5 / 12, 7 / 12, 0.75, 11 / 12],
}


@pytest.mark.parametrize("mode,n", list(DOC_GRIDS))
def test_resize_bilinear_reproduces_doc_grid_points(mode: str, n: int) -> None:
    @mb.program(input_specs=[spec((1, 1, 2))], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.resize_bilinear(
            x=x, target_size_height=1, target_size_width=n, sampling_mode=mode
        )

    out = run1(prog, x=np.array([0, 1], np.float32).reshape(1, 1, 2))
    np.testing.assert_allclose(out.reshape(-1), DOC_GRIDS[(mode, n)], atol=1e-6)


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
@pytest.mark.parametrize("mode,align", [("STRICT_ALIGN_CORNERS", True), ("UNALIGN_CORNERS", False)])
def test_resize_bilinear_matches_torch(np_dt, mil_dt, mode, align) -> None:
    @mb.program(input_specs=[spec((2, 3, 5, 4), mil_dt)], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.resize_bilinear(
            x=x, target_size_height=3, target_size_width=9, sampling_mode=mode
        )

    x = rand(2, 3, 5, 4, dtype=np_dt)
    ref = F.interpolate(
        torch.from_numpy(x.astype(np.float32)), size=(3, 9), mode="bilinear", align_corners=align
    ).numpy()
    close(run1(prog, x=x), ref, np_dt)


def test_resize_bilinear_align_corners_single_output_takes_centre() -> None:
    @mb.program(input_specs=[spec((1, 1, 5))], opset_version=ct.target.iOS15)
    def prog(x):
        return (
            mb.resize_bilinear(
                x=x, target_size_height=1, target_size_width=1, sampling_mode="ALIGN_CORNERS"
            ),
            mb.resize_bilinear(
                x=x, target_size_height=1, target_size_width=1, sampling_mode="STRICT_ALIGN_CORNERS"
            ),
        )

    x = np.array([0, 1, 2, 3, 4], np.float32).reshape(1, 1, 5)
    a, b = run(prog, x=x)
    assert a.reshape(-1)[0] == 2.0 and b.reshape(-1)[0] == 0.0


def test_resize_ios17_device_values() -> None:
    # coremltools iOS17 TestResize device results.
    @mb.program(input_specs=[spec((1, 1, 1, 2, 1)), spec((1, 1, 2))], opset_version=ct.target.iOS17)
    def prog(x, y):
        return (
            mb.resize(
                x=x,
                shape=[1, 1, 3, 2],
                resized_dims=np.uint32(2),
                interpolation_mode="NEAREST_NEIGHBOR",
                sampling_mode="DEFAULT",
            ),
            mb.resize(
                x=y,
                shape=[1, 1, 5],
                resized_dims=np.uint32(2),
                interpolation_mode="LINEAR",
                sampling_mode="DEFAULT",
            ),
        )

    a, b = run(
        prog,
        x=np.array([-6.174, 9.371], np.float32).reshape(1, 1, 1, 2, 1),
        y=np.array([0, 1], np.float32).reshape(1, 1, 2),
    )
    close(
        a, np.array([-6.174, -6.174, 9.371, 9.371, 9.371, 9.371], np.float32).reshape(1, 1, 1, 3, 2)
    )
    close(b, np.array([0, 0.4, 0.8, 1, 1], np.float32).reshape(1, 1, 5))


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
def test_resize_ios17_linear_dynamic_shape_matches_torch(np_dt, mil_dt) -> None:
    @mb.program(
        input_specs=[spec((1, 2, 4, 6), mil_dt), spec((3,), types.int32)],
        opset_version=ct.target.iOS17,
    )
    def prog(x, s):
        return mb.resize(x=x, shape=s, resized_dims=np.uint32(2), sampling_mode="UNALIGN_CORNERS")

    x = rand(1, 2, 4, 6, dtype=np_dt)
    ref = F.interpolate(
        torch.from_numpy(x.astype(np.float32)), size=(7, 6), mode="bilinear", align_corners=False
    ).numpy()
    close(run1(prog, x=x, s=np.array([9, 7, 0], np.int32)), ref, np_dt)


def test_crop() -> None:
    @mb.program(input_specs=[spec((2, 3, 6, 7))], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.crop(x=x, crop_height=[1, 2], crop_width=[0, 3])

    x = rand(2, 3, 6, 7)
    close(run1(prog, x=x), x[:, :, 1:4, 0:4])


IMG = np.arange(1, 17, dtype=np.float32).reshape(1, 1, 4, 4)
BOXES = np.array([[0.1, 0.3, 1.3, 1.0], [0.5, 1.8, 1.0, 0.3], [0.0, 0.4, 0.6, 0.7]], np.float32)


def crop_and_resize_tf(
    img: np.ndarray, boxes: np.ndarray, th: int, tw: int, pad: float
) -> np.ndarray:
    """TF crop_and_resize (normalized boxes, bilinear, extrapolation value), explicit loops."""
    _, c, h, w = img.shape
    out = np.zeros((len(boxes), c, th, tw), np.float32)
    for n, (y1, x1, y2, x2) in enumerate(boxes.astype(np.float64)):
        for i in range(th):
            y = y1 * (h - 1) + i * (y2 - y1) * (h - 1) / (th - 1)
            for j in range(tw):
                xx = x1 * (w - 1) + j * (x2 - x1) * (w - 1) / (tw - 1)
                if not (0 <= y <= h - 1 and 0 <= xx <= w - 1):
                    out[n, :, i, j] = pad
                    continue
                y0, x0 = int(np.floor(y)), int(np.floor(xx))
                y1_, x1_ = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
                dy, dx = y - y0, xx - x0
                top = img[0, :, y0, x0] * (1 - dx) + img[0, :, y0, x1_] * dx
                bot = img[0, :, y1_, x0] * (1 - dx) + img[0, :, y1_, x1_] * dx
                out[n, :, i, j] = top * (1 - dy) + bot * dy
    return out


@pytest.mark.parametrize("pad_value", [0.0, 10.0])
def test_crop_resize_ios16_device_values(pad_value: float) -> None:
    roi = np.concatenate([np.zeros((3, 1), np.float32), BOXES], axis=1).reshape(3, 1, 5, 1, 1)

    @mb.program(input_specs=[spec((1, 1, 4, 4))], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.crop_resize(
            x=x,
            roi=roi,
            target_width=2,
            target_height=2,
            normalized_coordinates=True,
            box_coordinate_mode="CORNERS_HEIGHT_FIRST",
            sampling_mode="ALIGN_CORNERS",
            pad_value=pad_value,
        )

    p = pad_value
    device = np.array([3.1, 5.2, p, p, p, 7.899, p, 13.9, 2.2, 3.1, 9.4, 10.3], np.float32)
    out = run1(prog, x=IMG)
    np.testing.assert_allclose(out, device.reshape(3, 1, 1, 2, 2), atol=2e-3)
    np.testing.assert_allclose(out[:, 0], crop_and_resize_tf(IMG, BOXES, 2, 2, p), atol=1e-5)


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
def test_crop_resize_ios17_boxes_and_indices_match_tf(np_dt, mil_dt) -> None:
    x = rand(2, 3, 6, 5, dtype=np_dt)
    boxes = np.array([[0.1, 0.2, 0.9, 0.7], [0.0, 0.0, 1.0, 1.0], [0.5, 0.9, 0.2, 0.1]], np.float32)
    idx = np.array([1, 0, 1], np.int32)

    @mb.program(input_specs=[spec(x.shape, mil_dt)], opset_version=ct.target.iOS17)
    def prog(xx):
        return mb.crop_resize(
            x=xx,
            boxes=boxes,
            box_indices=idx,
            target_height=4,
            target_width=3,
            normalized_coordinates=True,
            sampling_mode="ALIGN_CORNERS",
            pad_value=np_dt(-1.0),
        )

    ref = np.concatenate(
        [
            crop_and_resize_tf(x[i : i + 1].astype(np.float32), boxes[k : k + 1], 4, 3, -1.0)
            for k, i in enumerate(idx)
        ]
    )
    close(run1(prog, xx=x), ref, np_dt)


def test_crop_resize_ios15_center_size_pixel_coordinates() -> None:
    # CENTER_SIZE_WIDTH_FIRST [wc, hc, bw, bh] in pixels == corners [hc-bh/2, wc-bw/2, hc+bh/2, wc+bw/2].
    x = rand(1, 2, 6, 6)
    roi = np.array([2.0, 3.0, 2.0, 4.0], np.float32).reshape(1, 1, 4, 1, 1)

    @mb.program(input_specs=[spec((1, 2, 6, 6))], opset_version=ct.target.iOS15)
    def prog(xx):
        return mb.crop_resize(
            x=xx,
            roi=roi,
            target_height=3,
            target_width=3,
            box_coordinate_mode="CENTER_SIZE_WIDTH_FIRST",
            sampling_mode="ALIGN_CORNERS",
        )

    corners = np.array([[1.0, 1.0, 5.0, 3.0]], np.float32) / 5.0  # normalized for the TF reference
    close(run1(prog, xx=x)[:, 0], crop_and_resize_tf(x, corners, 3, 3, 0.0))


def _unnorm_to_torch(c: np.ndarray, w: int, h: int, mode: str, align: bool) -> np.ndarray:
    """Coordinates in ``mode`` as torch grid_sample's [-1, 1] (same align_corners)."""
    if mode == "normalized_minus_one_to_one":
        return c
    scale = np.array([w, h], np.float32)
    if mode == "normalized_zero_to_one":
        return c * 2 - 1
    return c * 2 / (scale - 1) - 1 if align else (2 * c + 1) / scale - 1


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
@pytest.mark.parametrize("sampling", ["bilinear", "nearest"])
@pytest.mark.parametrize(
    "padding,align",
    [
        ("constant", True),
        ("constant", False),
        ("border", True),
        ("border", False),
        ("reflection", True),
    ],
)
@pytest.mark.parametrize(
    "coords", ["normalized_minus_one_to_one", "normalized_zero_to_one", "unnormalized"]
)
def test_resample_matches_torch_grid_sample(
    np_dt, mil_dt, sampling, padding, align, coords
) -> None:
    b, c, h, w, ho, wo = 2, 3, 5, 6, 4, 7
    rng = np.random.default_rng(5)
    grid = rng.uniform(-1.4, 1.4, size=(b, ho, wo, 2)).astype(np.float32)  # torch [-1, 1] space
    if coords == "normalized_zero_to_one":
        mil_c = (grid + 1) / 2
    elif coords == "unnormalized":
        size = np.array([w, h], np.float32)
        mil_c = (grid + 1) / 2 * (size - 1) if align else ((grid + 1) * size - 1) / 2
    else:
        mil_c = grid
    x = rand(b, c, h, w, dtype=np_dt)

    @mb.program(
        input_specs=[spec(x.shape, mil_dt), spec(mil_c.shape)], opset_version=ct.target.iOS17
    )
    def prog(xx, cc):
        return mb.resample(
            x=xx,
            coordinates=cc,
            sampling_mode=sampling,
            padding_mode=padding,
            padding_value=np_dt(0.0),
            coordinates_mode=coords,
            align_corners=align,
        )

    tgrid = torch.from_numpy(_unnorm_to_torch(mil_c, w, h, coords, align).astype(np.float32))
    torch_pad = {"constant": "zeros", "border": "border", "reflection": "reflection"}[padding]
    ref = F.grid_sample(
        torch.from_numpy(x.astype(np.float32)),
        tgrid,
        mode=sampling,
        padding_mode=torch_pad,
        align_corners=align,
    ).numpy()
    close(run1(prog, xx=x, cc=mil_c), ref, np_dt)


def test_resample_device_values_all_padding_modes() -> None:
    # coremltools iOS15 TestResample device results (constant value, border, reflection, symmetric).
    x = np.array([11.0, 22.0, 33.0, 44.0], np.float32).reshape(1, 1, 2, 2)
    coords = np.array([-1.0, -2.0, -3.7, -1.0, 0.0, 0.0, 3.5, 1.2], np.float32).reshape(1, 2, 2, 2)

    @mb.program(input_specs=[spec((1, 1, 2, 2)), spec((1, 2, 2, 2))], opset_version=ct.target.iOS16)
    def prog(xx, cc):
        return (
            mb.resample(
                x=xx,
                coordinates=cc,
                sampling_mode="bilinear",
                padding_mode="constant",
                padding_value=6.17,
                coordinates_mode="normalized_minus_one_to_one",
                align_corners=True,
            ),
            mb.resample(
                x=xx,
                coordinates=cc,
                sampling_mode="nearest",
                padding_mode="border",
                padding_value=-1.0,
                coordinates_mode="unnormalized",
                align_corners=False,
            ),
            mb.resample(
                x=xx,
                coordinates=cc,
                sampling_mode="bilinear",
                padding_mode="reflection",
                padding_value=-1.0,
                coordinates_mode="normalized_zero_to_one",
                align_corners=True,
            ),
            mb.resample(
                x=xx,
                coordinates=cc,
                sampling_mode="nearest",
                padding_mode="symmetric",
                padding_value=-1.0,
                coordinates_mode="normalized_zero_to_one",
                align_corners=False,
            ),
        )

    outs = run(prog, xx=x, cc=coords)
    device = [
        [8.585, 6.17, 27.5, 6.17],
        [11.0, 11.0, 11.0, 44.0],
        [22.0, 36.3, 11.0, 34.1],
        [22.0, 33.0, 11.0, 33.0],
    ]
    for out, ref in zip(outs, device):
        np.testing.assert_allclose(out.reshape(-1), ref, atol=1e-4)


def test_affine_device_values_and_torch_affine_grid() -> None:
    x = np.array([11.0, 22.0, 33.0, 44.0], np.float32).reshape(1, 1, 2, 2)
    m = np.array([-1.0, -2.0, -3.7, -1.0, 3.5, 1.2], np.float32).reshape(1, 6)

    @mb.program(input_specs=[spec((1, 1, 2, 2)), spec((1, 6))], opset_version=ct.target.iOS15)
    def prog(xx, mm):
        common = {
            "sampling_mode": "bilinear",
            "padding_mode": "constant",
            "padding_value": 0.0,
            "coordinates_mode": "normalized_minus_one_to_one",
            "align_corners": True,
        }
        return (
            mb.affine(x=xx, transform_matrix=mm, output_height=3, output_width=3, **common),
            mb.affine(x=xx, transform_matrix=mm, output_height=2, output_width=5, **common),
        )

    a, b = run(prog, xx=x, mm=m)
    np.testing.assert_allclose(
        a.reshape(-1), [10.752501, 2.5025, 0, 1.98, 0, 0, 0, 0, 0], atol=1e-4
    )
    np.testing.assert_allclose(
        b.reshape(-1), [10.752501, 5.94, 2.5025, 0.44, 0, 0, 0, 0, 0, 0], atol=1e-4
    )
    theta = torch.from_numpy(m.reshape(1, 2, 3))
    grid = F.affine_grid(theta, [1, 1, 3, 3], align_corners=True)
    ref = F.grid_sample(torch.from_numpy(x), grid, align_corners=True).numpy()
    close(a, ref)
