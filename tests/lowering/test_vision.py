"""Lowering of vision ops (GridSample, AffineGrid, RoiAlign, CenterCropPad, Col2Im) vs onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lowering.support import Case, check, rand

F16 = np.float16
I64 = np.int64


def grid(n: int, h: int, w: int, spread: float = 1.2, dtype=np.float32) -> np.ndarray:
    return rand(n, h, w, 2, low=-spread, high=spread, seed=7).astype(dtype)


X = rand(2, 3, 5, 6)
X3D = rand(2, 2, 3, 4, 5)
THETA2 = (np.array([[[1.0, 0.2, 0.1], [-0.1, 0.9, 0.0]]], np.float32) + rand(2, 2, 3, low=-0.2, high=0.2))
THETA3 = np.eye(3, 4, dtype=np.float32)[None] + rand(1, 3, 4, low=-0.2, high=0.2)

CASES = [
    *[
        Case("GridSample", [X, grid(2, 4, 7)], {"mode": mode, "padding_mode": pad, "align_corners": ac}, opset=16)
        for mode in ("bilinear", "nearest")
        for pad in ("zeros", "border", "reflection")
        for ac in (0, 1)
    ],
    Case("GridSample", [X, grid(2, 3, 3, spread=3.5)], {"mode": "linear", "padding_mode": "reflection"}, opset=20,
         id="GridSample-20-reflection-far"),
    Case("GridSample", [X.astype(F16), grid(2, 4, 4, dtype=F16)], {"mode": "linear", "align_corners": 1}, opset=20),
    # Bicubic and volumetric sampling: one gather of all taps (grid_sample_gather.py).
    *[
        Case("GridSample", [X, grid(2, 4, 7, spread=spread)], {"mode": mode, "padding_mode": pad, "align_corners": ac},
             opset=opset, id=f"GridSample-{opset}-{mode}-{pad}-{ac}-spread{spread}")
        for opset, mode in ((16, "bicubic"), (20, "cubic"))
        for pad in ("zeros", "border", "reflection")
        for ac in (0, 1)
        for spread in ((1.2, 3.5) if opset == 20 else (1.2,))
    ],
    *[
        Case("GridSample", [X3D, rand(2, 3, 4, 2, 3, low=-spread, high=spread, seed=9)],
             {"mode": mode, "padding_mode": pad, "align_corners": ac}, opset=20,
             id=f"GridSample-5d-{mode}-{pad}-{ac}-spread{spread}")
        for mode in ("linear", "nearest")
        for pad in ("zeros", "border", "reflection")
        for ac in (0, 1)
        for spread in (1.1, 3.5)
    ],
    Case("GridSample", [X.astype(F16), grid(2, 4, 4, dtype=F16)], {"mode": "cubic"}, opset=20, id="GridSample-cubic-fp16"),
    Case("AffineGrid", [THETA2, np.array([2, 3, 4, 5], I64)], {"align_corners": 0}, opset=20, const_inputs=(1,)),
    Case("AffineGrid", [THETA2, np.array([2, 3, 4, 5], I64)], {"align_corners": 1}, opset=20, const_inputs=(1,)),
    Case("AffineGrid", [THETA3, np.array([1, 1, 3, 4, 2], I64)], {}, opset=20, const_inputs=(1,)),
    Case("CenterCropPad", [rand(4, 5, 3), np.array([2, 8, 3], I64)], opset=18, const_inputs=(1,)),
    Case("CenterCropPad", [rand(4, 7, 3), np.array([5, 3], I64)], {"axes": [-3, 1]}, opset=18, const_inputs=(1,)),
    Case("CenterCropPad", [rand(6, 5, dtype=I64, low=-9, high=9), np.array([3, 9], I64)], opset=18,
         const_inputs=(1,)),
    Case("CenterCropPad", [rand(2, 6, 5, dtype=F16), np.array([4, 8], I64)], {"axes": [1, 2]}, opset=18,
         const_inputs=(1,)),
    Case("Col2Im", [rand(1, 2 * 4, 12), np.array([4, 5], I64), np.array([2, 2], I64)], opset=18, const_inputs=(1, 2)),
    Case("Col2Im", [rand(2, 3 * 6, 6), np.array([5, 5], I64), np.array([2, 3], I64)],
         {"strides": [2, 1], "pads": [1, 0, 0, 1], "dilations": [1, 2]}, opset=18, const_inputs=(1, 2)),
    Case("Col2Im", [rand(1, 4, 9, dtype=F16), np.array([4, 4], I64), np.array([2, 2], I64)], {"strides": [1, 1]},
         opset=18, const_inputs=(1, 2)),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_vision(case: Case) -> None:
    check(case)


ROIS = np.array([[0.0, 0.0, 5.0, 4.0], [1.2, 0.4, 4.7, 3.9], [-0.8, 1.0, 6.5, 5.2], [2.0, 2.0, 2.3, 2.2]], np.float32)
BIDX = np.array([0, 1, 1, 0], I64)
FEAT = rand(2, 3, 5, 6)

ROI_CASES = [
    Case("RoiAlign", [FEAT, ROIS, BIDX], {"output_height": 2, "output_width": 3, "sampling_ratio": 2}, opset=16),
    Case("RoiAlign", [FEAT, ROIS * 2, BIDX], {"output_height": 3, "output_width": 2, "sampling_ratio": 1,
         "spatial_scale": 0.5, "coordinate_transformation_mode": "output_half_pixel"}, opset=16),
    Case("RoiAlign", [FEAT, ROIS, BIDX], {"output_height": 2, "output_width": 2, "sampling_ratio": 2}, opset=10,
         id="RoiAlign-10-clamped-sizes"),
    Case("RoiAlign", [FEAT, np.array([[0.5, 0.2, 4.5, 3.0], [1.0, 1.5, 4.8, 4.1]], np.float32), BIDX[:2]],
         {"output_height": 2, "output_width": 2}, opset=16, const_inputs=(1,), id="RoiAlign-adaptive-const-rois"),
    Case("RoiAlign", [FEAT.astype(F16), ROIS.astype(F16), BIDX], {"output_height": 2, "output_width": 2,
         "sampling_ratio": 2}, opset=16),
    # Max mode (regression, onnx node test test_roialign_mode_max): onnxruntime and onnx's reference
    # agree on the max of the weighted corner terms per sample, then the max over the bin.
    Case("RoiAlign", [FEAT, ROIS, BIDX], {"mode": "max", "output_height": 2, "output_width": 2,
         "sampling_ratio": 2}, opset=16, id="RoiAlign-max"),
    Case("RoiAlign", [FEAT, ROIS * 2, BIDX], {"mode": "max", "output_height": 3, "output_width": 2,
         "sampling_ratio": 1, "spatial_scale": 0.5, "coordinate_transformation_mode": "output_half_pixel"},
         opset=16, id="RoiAlign-max-output-half-pixel"),
    Case("RoiAlign", [FEAT, ROIS, BIDX], {"mode": "max", "output_height": 2, "output_width": 3,
         "sampling_ratio": 2}, opset=10, id="RoiAlign-10-max"),
    Case("RoiAlign", [FEAT.astype(F16), ROIS.astype(F16), BIDX], {"mode": "max", "output_height": 2,
         "output_width": 2, "sampling_ratio": 3}, opset=16, id="RoiAlign-max-fp16"),
]


@pytest.mark.parametrize("case", ROI_CASES, ids=str)
def test_roi_align(case: Case) -> None:
    check(case)


def test_roi_align_adaptive_runtime_rois_explains() -> None:
    from pipeline.errors import PipelineError

    case = Case("RoiAlign", [FEAT, ROIS, BIDX], {"output_height": 2, "output_width": 2}, opset=16, target="iOS17")
    with pytest.raises(PipelineError, match="sampling_ratio"):
        check(case)


def tie_grid(h: int, w: int, align: int) -> np.ndarray:
    """A [1, 4, 5, 2] grid whose pixel coordinates are all exact .5 ties (and some integers),
    inside and outside the image: nearest must round them half to even as ONNX does."""
    px = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 2.0, -1.0, 7.0, 1.5, 3.5, 0.5, 4.5, -0.5,
                   5.5, 2.5], np.float64)
    py = np.roll(px, 7) * (h / w)
    py = np.round(py * 2) / 2  # keep ties
    if align:
        nx, ny = px / ((w - 1) / 2) - 1, py / ((h - 1) / 2) - 1
    else:
        nx, ny = (2 * px + 1) / w - 1, (2 * py + 1) / h - 1
    return np.stack([nx, ny], axis=-1).reshape(1, 4, 5, 2).astype(np.float32)


@pytest.mark.parametrize("pad", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [0, 1])
def test_grid_sample_nearest_ties(pad: str, align: int) -> None:
    """Regression (onnx node tests test_gridsample_nearest*): ties round half to even (MIL
    resample's nearest rounds them up).  Expected side: onnxruntime (std::nearbyint)."""
    x = rand(1, 2, 4, 5, low=-9, high=9)
    g = tie_grid(4, 5, align)
    check(Case("GridSample", [x, g], {"mode": "nearest", "padding_mode": pad, "align_corners": align}, opset=20))


def test_grid_sample_nearest_ties_fp16() -> None:
    x = rand(1, 2, 4, 5, low=-9, high=9).astype(F16)
    check(Case("GridSample", [x, tie_grid(4, 5, 0)], {"mode": "nearest"}, opset=16))
