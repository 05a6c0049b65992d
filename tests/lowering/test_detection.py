"""Lowering of detection ops (NonMaxSuppression, MaxRoiPool) vs onnxruntime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from pipeline.errors import LoweringError, UnsupportedOpError
from pipeline.lowering import lower
from tests.lowering.support import Case, check, make_model, rand

I64 = np.int64
F32 = np.float32
NMS = "NonMaxSuppression"


def corner_boxes(b: int, n: int, seed: int = 0) -> np.ndarray:
    """[b, n, 4] boxes as [y1, x1, y2, x2] of any diagonal pair (corners may come swapped)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 10, (b, n, 4)).astype(F32)


def center_boxes(b: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.uniform(0, 10, (b, n, 2)), rng.uniform(1, 6, (b, n, 2))], -1).astype(F32)


def grid_boxes(rng: np.random.Generator, b: int, n: int) -> np.ndarray:
    """Boxes on an integer grid: IoUs are exact small fractions (1/2, 1/3...), so ties with the
    threshold happen and every coordinate survives the center/size form exactly."""
    lo = rng.integers(0, 4, (b, n, 2))
    size = rng.integers(0, 4, (b, n, 2))  # includes empty boxes
    return np.concatenate([lo, lo + size], -1).astype(F32)


def scores(b: int, c: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + 100).uniform(0, 1, (b, c, n)).astype(F32)


def k(v: int) -> np.ndarray:
    return np.array([v], I64)


def f(v: float) -> np.ndarray:
    return np.array([v], F32)


BX, SC = corner_boxes(2, 12), scores(2, 3, 12)

NMS_CASES = [
    Case(NMS, [BX, SC, k(4), f(0.3), f(0.2)], opset=10, const_inputs=(2, 3, 4), id="nms-10-corners"),
    Case(NMS, [BX, SC, k(4), f(0.3), f(0.2)], opset=11, const_inputs=(2, 3, 4), id="nms-11-corners"),
    Case(NMS, [BX, SC, k(4), f(0.3), f(0.2)], opset=11, const_inputs=(2, 3, 4), target="iOS17",
         id="nms-11-iOS17"),
    Case(NMS, [center_boxes(2, 9), scores(2, 2, 9), k(3), f(0.2)], {"center_point_box": 1}, opset=11,
         const_inputs=(2, 3), id="nms-center-no-score-threshold"),
    Case(NMS, [center_boxes(1, 9), scores(1, 2, 9), k(3), f(0.2), f(0.5)], {"center_point_box": 1},
         opset=11, const_inputs=(2, 3, 4), target="iOS18", id="nms-center-iOS18"),
    Case(NMS, [corner_boxes(1, 7, seed=2), scores(1, 1, 7, seed=2), k(3), f(0.2)], opset=11,
         const_inputs=(2, 3), id="nms-one-batch-one-class"),
    Case(NMS, [BX, SC], opset=11, id="nms-no-limit-means-no-output"),
    Case(NMS, [BX, SC, k(0), f(0.5)], opset=11, const_inputs=(2, 3), id="nms-limit-0"),
    Case(NMS, [BX, SC, k(3)], opset=11, const_inputs=(2,), id="nms-iou-default-0"),
    Case(NMS, [BX, SC, k(np.iinfo(I64).max), f(0.4)], opset=11, const_inputs=(2, 3), id="nms-int64-max-limit"),
    Case(NMS, [BX, SC, k(50), f(0.4), f(0.9)], opset=11, const_inputs=(2, 3, 4), id="nms-limit-over-n"),
    Case(NMS, [BX, SC, k(5), f(0.4), f(0.3)], opset=11, const_inputs=(3,), id="nms-runtime-limit-threshold"),
    Case(NMS, [BX, SC, k(5), f(0.4), f(0.3)], opset=11, const_inputs=(3,), target="iOS17",
         id="nms-runtime-limit-threshold-iOS17"),
    Case(NMS, [BX, SC, k(3), f(0.3), f(2.0)], opset=11, const_inputs=(2, 3, 4), id="nms-nothing-passes"),
    # fp16 program: boxes spread apart so fp16 rounding cannot move an IoU across the threshold.
    Case(NMS, [corner_boxes(1, 8, seed=3) * 8, scores(1, 2, 8, seed=3), k(4), f(0.5), f(0.1)], opset=11,
         const_inputs=(2, 3, 4), precision="fp16", id="nms-fp16-program"),
]


def _pool_rois() -> np.ndarray:
    return np.array(
        [
            [0, 0, 0, 10, 8],  # whole image
            [1, 2.5, 1.5, 7, 6],  # half coordinates: rounded half away from zero
            [0, -3, -2, 4, 3],  # partly outside
            [1, 5, 5, 5, 5],  # one pixel
            [0, -10, -10, -5, -5],  # outside: every bin empty -> 0
            [1, 3, 2, 30, 20],  # past the far edge
            [0, 7.5, 4.5, 2, 1],  # end before start: size clamps to 1
        ],
        F32,
    )


X_POOL = rand(2, 3, 9, 11)
POOL_CASES = [
    Case("MaxRoiPool", [X_POOL, _pool_rois()], {"pooled_shape": [2, 2]}, opset=1, const_inputs=(1,)),
    Case("MaxRoiPool", [X_POOL, _pool_rois()], {"pooled_shape": [3, 4], "spatial_scale": 0.5}, opset=13,
         const_inputs=(1,)),
    Case("MaxRoiPool", [X_POOL, _pool_rois()], {"pooled_shape": [5, 3]}, opset=21, const_inputs=(1,),
         target="iOS17"),
    Case("MaxRoiPool", [rand(1, 4, 6, 6), np.array([[0, 1, 1, 4, 5]], F32)], {"pooled_shape": [2, 3]}, opset=13,
         const_inputs=(1,), precision="fp16", id="maxroipool-fp16-program"),
]


@pytest.mark.parametrize("case", NMS_CASES + POOL_CASES, ids=str)
def test_detection(case: Case) -> None:
    check(case)


def _nms_model(iou: float, center: int, b: int, c: int, n: int) -> object:
    """NMS with run-time boxes, scores, limit and score threshold; constant IoU threshold."""
    inputs = [
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [b, n, 4]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, [b, c, n]),
        helper.make_tensor_value_info("limit", TensorProto.INT64, [1]),
        helper.make_tensor_value_info("score_thr", TensorProto.FLOAT, [1]),
    ]
    node = helper.make_node(NMS, ["boxes", "scores", "limit", "iou", "score_thr"], ["sel"],
                            center_point_box=center)
    out = helper.make_tensor_value_info("sel", TensorProto.INT64, ["k", 3])
    graph = helper.make_graph([node], "nms", inputs, [out], [numpy_helper.from_array(f(iou), "iou")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 8
    return model


def _ort_session(model: object) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("target", ["iOS16", "iOS17"])
@pytest.mark.parametrize("iou", [0.5, 1.0 / 3.0, 0.0])
def test_nms_random_sweep_with_ties(target: str, iou: float) -> None:
    # Grid boxes give IoUs exactly at the threshold; scores drawn from 4 levels give score ties
    # (lower box index first) and scores exactly at the score threshold (strictly above passes).
    b, c, n = 2, 3, 10
    model = _nms_model(iou, 0, b, c, n)
    result, session = lower(model, target=target, verify=False), _ort_session(model)
    rng = np.random.default_rng(int(iou * 1000) + len(target))
    for trial in range(25):
        feeds = {
            "boxes": grid_boxes(rng, b, n)[..., [1, 0, 3, 2]] if trial % 2 else grid_boxes(rng, b, n),
            "scores": (rng.integers(0, 4, (b, c, n)) / 4).astype(F32),
            "limit": k(int(rng.integers(0, n + 2))),
            "score_thr": f(float(rng.choice([-1.0, 0.0, 0.25, 0.5]))),
        }
        (expected,) = session.run(None, feeds)
        actual = result.predict(feeds)["sel"]
        assert actual.dtype == expected.dtype
        np.testing.assert_array_equal(actual, expected, err_msg=f"trial {trial}: {feeds}")


def test_nms_random_sweep_center_boxes() -> None:
    b, c, n = 1, 2, 16
    model = _nms_model(0.45, 1, b, c, n)
    result, session = lower(model, target="iOS16", verify=False), _ort_session(model)
    rng = np.random.default_rng(5)
    for trial in range(20):
        feeds = {
            "boxes": center_boxes(b, n, seed=trial),
            "scores": rng.uniform(0, 1, (b, c, n)).astype(F32),
            "limit": k(int(rng.integers(1, n))),
            "score_thr": f(float(rng.uniform(0, 0.5))),
        }
        (expected,) = session.run(None, feeds)
        np.testing.assert_array_equal(result.predict(feeds)["sel"], expected, err_msg=f"trial {trial}")


def test_nms_runtime_iou_threshold_is_refused() -> None:
    case = Case(NMS, [BX, SC, k(4), f(0.3)], opset=11, const_inputs=(2,))
    model, _ = make_model(case)
    with pytest.raises(UnsupportedOpError, match="iou_threshold is computed at run time"):
        lower(model, verify=False)


def test_nms_iou_threshold_outside_the_spec_range_is_refused() -> None:
    model, _ = make_model(Case(NMS, [BX, SC, k(4), f(0.3)], opset=11, const_inputs=(2, 3)))
    model.graph.initializer[1].CopyFrom(numpy_helper.from_array(f(-0.5), "in3"))
    with pytest.raises(UnsupportedOpError, match=r"outside the spec's \[0, 1\]"):
        lower(model, verify=False)


def test_maxroipool_runtime_rois_are_refused() -> None:
    model, _ = make_model(Case("MaxRoiPool", [X_POOL, _pool_rois()], {"pooled_shape": [2, 2]}, opset=13))
    with pytest.raises(LoweringError, match="rois are computed at run time"):
        lower(model, verify=False)
