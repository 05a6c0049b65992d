"""Lowering of Resize (opsets 10..19) and Upsample (7, 9), checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.lowering.ops.resize_tables import AxisSpec, mil_linear_matrix, weight_matrix
from tests.lowering.support import Case, check, make_model, rand

F16 = np.float16
I64 = np.int64
EMPTY = np.zeros(0, np.float32)


def sc(*values: float) -> np.ndarray:
    return np.array(values, np.float32)


def sz(*values: int) -> np.ndarray:
    return np.array(values, I64)


X = rand(1, 2, 5, 7)


def scales_case(x, scales, opset=19, **attrs) -> Case:
    return Case("Resize", [x, None, scales], attrs, opset=opset, const_inputs=(2,))


def sizes_case(x, sizes, opset=19, **attrs) -> Case:
    return Case("Resize", [x, None, None, sizes], attrs, opset=opset, const_inputs=(3,))


CASES = [
    # Native candidates: torch-style nearest x2 and bilinear (pytorch_half_pixel / align_corners).
    scales_case(X, sc(1, 1, 2, 2), mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
    scales_case(X, sc(1, 1, 2, 3), mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor",
                opset=13),
    sizes_case(X, sz(1, 2, 8, 10), mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
    scales_case(X, sc(1, 1, 2, 2), mode="linear", coordinate_transformation_mode="pytorch_half_pixel"),
    Case("Resize", [X, EMPTY, sc(1, 1, 2, 2)], {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
         opset=11, const_inputs=(1, 2)),
    sizes_case(X, sz(1, 2, 9, 4), mode="linear", coordinate_transformation_mode="half_pixel"),
    sizes_case(X, sz(1, 2, 3, 11), mode="linear", coordinate_transformation_mode="asymmetric"),
    sizes_case(rand(1, 3, 6, dtype=F16), sz(1, 3, 13), mode="linear", coordinate_transformation_mode="half_pixel"),
    scales_case(rand(2, 3, 4, 4, dtype=F16), sc(1, 1, 2, 2), mode="nearest", coordinate_transformation_mode="asymmetric",
                nearest_mode="floor", opset=13),
    # Nearest rounding modes and coordinate transforms (composite gather).
    *[
        scales_case(X, sc(1, 1, 1.7, 2.3), mode="nearest", coordinate_transformation_mode=ctm, nearest_mode=nm)
        for ctm, nm in [("half_pixel", "round_prefer_floor"), ("half_pixel", "round_prefer_ceil"),
                        ("half_pixel", "floor"), ("half_pixel", "ceil"), ("pytorch_half_pixel", "round_prefer_ceil"),
                        ("align_corners", "round_prefer_floor"), ("asymmetric", "ceil"), ("asymmetric", "floor")]
    ],
    scales_case(X, sc(1, 1, 0.6, 0.5), mode="nearest"),
    sizes_case(X, sz(1, 2, 3, 11), mode="nearest", coordinate_transformation_mode="half_pixel_symmetric",
               nearest_mode="round_prefer_ceil"),
    scales_case(rand(1, 2, 5, 7, dtype=np.int32, low=-9, high=9), sc(1, 1, 1.7, 2.3), mode="nearest", opset=13),
    sizes_case(rand(2, 3, 4, dtype=np.int32, low=-9, high=9), sz(4, 3, 6), mode="nearest", opset=18),
    # Linear/cubic composites: all transforms, exclude_outside, cubic_coeff_a, antialias.
    *[
        scales_case(X, sc(1, 1, 1.7, 0.6), mode=mode, coordinate_transformation_mode=ctm)
        for mode in ("linear", "cubic")
        for ctm in ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric")
    ],
    scales_case(X, sc(1, 1, 2, 2), mode="cubic", coordinate_transformation_mode="pytorch_half_pixel",
                cubic_coeff_a=-0.5, exclude_outside=1),
    sizes_case(X, sz(1, 2, 4, 4), mode="cubic", exclude_outside=1, antialias=1),
    sizes_case(X, sz(1, 2, 3, 3), mode="linear", antialias=1),
    sizes_case(X, sz(1, 2, 1, 1), mode="cubic", coordinate_transformation_mode="pytorch_half_pixel"),
    sizes_case(rand(1, 2, 5, 7, dtype=F16), sz(1, 2, 8, 3), mode="cubic"),
    # Axes and keep_aspect_ratio_policy (opset 18), negative axes, 1-D and 3-D spatial.
    Case("Resize", [X, None, None, sz(9, 4)], {"mode": "linear", "axes": [-2, 3]}, opset=18, const_inputs=(3,)),
    Case("Resize", [X, None, None, sz(10, 10)], {"mode": "linear", "axes": [2, 3],
         "keep_aspect_ratio_policy": "not_larger"}, opset=18, const_inputs=(3,)),
    Case("Resize", [X, None, None, sz(10, 10)], {"mode": "nearest", "axes": [2, 3],
         "keep_aspect_ratio_policy": "not_smaller"}, opset=18, const_inputs=(3,)),
    Case("Resize", [rand(2, 3, 4, 5, 6), None, sc(2, 0.5)], {"mode": "nearest", "axes": [1, 3]}, opset=18,
         const_inputs=(2,), id="Resize-nearest-axis1-and-3"),
    scales_case(rand(1, 2, 3, 4, 5), sc(1, 1, 2, 1.5, 0.8), mode="linear"),
    scales_case(rand(2, 9), sc(1, 0.5), mode="linear"),
    # tf_crop_and_resize with extrapolation (roi is per axis: starts then ends).
    Case("Resize", [X, np.array([0, 0, -0.2, 0.1, 1, 1, 0.9, 1.3], np.float32), EMPTY, sz(1, 2, 4, 6)],
         {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": 2.5},
         opset=11, const_inputs=(1, 2, 3)),
    Case("Resize", [X, np.array([0.1, 0.2, 0.8, 0.7], np.float32), None, sz(3, 4)],
         {"mode": "nearest", "coordinate_transformation_mode": "tf_crop_and_resize", "axes": [2, 3]},
         opset=18, const_inputs=(1, 3)),
    # Opset 11 with empty roi/scales placeholders and tf_half_pixel_for_nn.
    Case("Resize", [X, EMPTY, sc(1, 1, 2, 1.5)], {"mode": "nearest",
         "coordinate_transformation_mode": "tf_half_pixel_for_nn"}, opset=11, const_inputs=(1, 2)),
    Case("Resize", [X, EMPTY, EMPTY, sz(1, 2, 10, 14)], {"mode": "linear"}, opset=11, const_inputs=(1, 2, 3)),
    # Resize-10 and Upsample-7/9: asymmetric.
    Case("Resize", [X, sc(1, 1, 2, 3)], {"mode": "nearest"}, opset=10, const_inputs=(1,)),
    Case("Resize", [X, sc(1, 1, 1.5, 2.5)], {"mode": "linear"}, opset=10, const_inputs=(1,)),
    Case("Resize", [X, sc(1, 1, 0.5, 0.6)], {"mode": "nearest"}, opset=10, const_inputs=(1,)),
    Case("Upsample", [X], {"mode": "nearest", "scales": [1.0, 1.0, 2.0, 3.0]}, opset=7),
    Case("Upsample", [X, sc(1, 1, 2, 2)], {"mode": "linear"}, opset=9, const_inputs=(1,)),
    # fp16 compute precision on an fp32 model.
    scales_case(X, sc(1, 1, 1.7, 0.6), mode="cubic", opset=18),
]
CASES[-1].precision = "fp16"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_resize(case: Case) -> None:
    check(case)



@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (scales_case(X, sc(1, 1, 2, 2), mode="nearest", coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor"), {"upsample_nearest_neighbor"}),
        (scales_case(X, sc(1, 1, 2, 2), mode="linear", coordinate_transformation_mode="pytorch_half_pixel"),
         {"upsample_bilinear"}),
        (sizes_case(X, sz(1, 2, 9, 4), mode="linear", coordinate_transformation_mode="align_corners"),
         {"resize_bilinear"}),
    ],
    ids=["nearest-x2", "bilinear-x2", "bilinear-sizes"],
)
def test_native_op_chosen(case: Case, expected: set[str]) -> None:
    """Torch-style resizes become one native MIL op, as Apple's PyTorch frontend emits."""
    from pipeline.lowering import lower

    model, _ = make_model(case)
    result = lower(model, target=case.target, verify=False)
    ops = [op.op_type for op in result.program.functions["main"].operations if op.op_type != "const"]
    assert set(ops) == expected and len(ops) == 1, ops


def test_tables_match_numpy_interp() -> None:
    """Our linear table reproduces numpy.interp on half-pixel centres (an independent formula)."""
    length, out = 5, 9
    w = weight_matrix(AxisSpec(length, out, out / length, "linear", "half_pixel"))
    data = rand(length).astype(np.float64)
    xs = np.clip((np.arange(out) + 0.5) * length / out - 0.5, 0, length - 1)
    np.testing.assert_allclose(w @ data, np.interp(xs, np.arange(length), data), atol=1e-6)
    np.testing.assert_allclose(mil_linear_matrix("UNALIGN_CORNERS", length, out), w, atol=1e-6)
