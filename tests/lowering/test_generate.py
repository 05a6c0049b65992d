"""Lowering of generators and masks (ConstantOfShape, Range, EyeLike, Trilu, OneHot) against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as TP
from onnx import numpy_helper

from pipeline.errors import UnsupportedOpError
from pipeline.lowering import lower
from tests.lowering.support import Case, check, make_model, rand

F16 = np.float16
I64 = np.int64
I32 = np.int32


def ints(*values: int) -> np.ndarray:
    return np.asarray(values, I64)


def scalar(v: float, dtype: type) -> np.ndarray:
    return np.asarray(v, dtype)


#: A causal attention mask: -inf above the diagonal must stay -inf (no inf - inf = NaN).
NEG_INF = np.full((4, 4), -np.inf, np.float32)

CASES = [
    # ConstantOfShape: default float 0, int64 value, bool value, run-time shape (fill).
    Case("ConstantOfShape", [ints(2, 3)], opset=9, const_inputs=(0,), id="ConstantOfShape-default"),
    Case("ConstantOfShape", [ints(3, 1, 2)], {"value": numpy_helper.from_array(np.array([7], I64))}, opset=20,
         const_inputs=(0,), id="ConstantOfShape-int64"),
    Case("ConstantOfShape", [ints(2, 2)], {"value": numpy_helper.from_array(np.array([True]))}, opset=21,
         const_inputs=(0,), id="ConstantOfShape-bool"),
    Case("ConstantOfShape", [ints(2, 5)], {"value": numpy_helper.from_array(np.array([1.5], F16))}, opset=9,
         id="ConstantOfShape-runtime-fp16"),
    Case("ConstantOfShape", [ints(4, 3)], {"value": numpy_helper.from_array(np.array([-2.5], np.float32))}, opset=9,
         id="ConstantOfShape-runtime-float"),
    # Range: constants fold (int64, float with a non-integral count); run-time bounds (range_1d).
    Case("Range", [scalar(1, I64), scalar(10, I64), scalar(3, I64)], const_inputs=(0, 1, 2), id="Range-int64-const"),
    Case("Range", [scalar(0.5, np.float32), scalar(2.0, np.float32), scalar(0.4, np.float32)],
         const_inputs=(0, 1, 2), id="Range-float-const"),
    Case("Range", [scalar(10, I64), scalar(1, I64), scalar(-2, I64)], id="Range-int64-runtime-negative-step"),
    Case("Range", [scalar(0.0, np.float32), scalar(3.0, np.float32), scalar(0.5, np.float32)], const_inputs=(0, 2),
         id="Range-float-runtime-limit"),
    # EyeLike: k offsets, dtype attribute, input dtype default.
    Case("EyeLike", [rand(3, 4)], opset=9, id="EyeLike-default"),
    Case("EyeLike", [rand(4, 3)], {"k": -1, "dtype": TP.INT64}, opset=9, id="EyeLike-k-neg-int64"),
    Case("EyeLike", [rand(3, 5, dtype=F16)], {"k": 2}, opset=22, id="EyeLike-k2-fp16"),
    # Trilu: band_part cases (upper k<=0, lower k>=0) and mask cases (upper k>0, lower k<0).
    Case("Trilu", [rand(3, 4)], opset=14, id="Trilu-upper-default"),
    Case("Trilu", [rand(2, 4, 3), scalar(-1, I64)], const_inputs=(1,), opset=14, id="Trilu-upper-k-neg"),
    Case("Trilu", [rand(4, 4, dtype=F16), scalar(1, I64)], {"upper": 0}, const_inputs=(1,), opset=14,
         id="Trilu-lower-k1-fp16"),
    Case("Trilu", [rand(3, 5, dtype=I64, low=-9, high=9), scalar(2, I64)], const_inputs=(1,), opset=14,
         id="Trilu-upper-k2-mask-int64"),
    Case("Trilu", [rand(2, 3, 3), scalar(-1, I64)], {"upper": 0}, const_inputs=(1,), opset=14,
         id="Trilu-lower-k-neg-mask"),
    Case("Trilu", [NEG_INF, scalar(1, I64)], const_inputs=(1,), opset=14, id="Trilu-causal-mask-neg-inf"),
    # OneHot: negative indices (11), axis, int64/float values, run-time depth, float indices.
    Case("OneHot", [ints(0, 2, -1, 1), scalar(4, I64), np.array([0, 1], I64)], const_inputs=(1, 2), opset=11,
         id="OneHot-negative-index"),
    Case("OneHot", [ints(0, 2, 1, 3).reshape(2, 2), scalar(4, I64), np.array([-1.0, 2.0], np.float32)],
         {"axis": 1}, const_inputs=(1, 2), opset=11, id="OneHot-axis1-float"),
    Case("OneHot", [ints(1, 0, 2), np.array([3], I64), np.array([0.5, 1.5], F16)], {"axis": 0},
         const_inputs=(2,), opset=11, id="OneHot-runtime-depth-fp16"),
    Case("OneHot", [np.array([1.0, 2.0, 0.0], np.float32), scalar(3, I64), np.array([0, 5], I64)],
         const_inputs=(1, 2), opset=9, id="OneHot-float-indices"),
    Case("OneHot", [ints(2, -3, 0), scalar(3, I64), np.array([2.0, 9.0], np.float32)], {"axis": -2},
         opset=11, id="OneHot-runtime-values"),
    # Other deployment targets.
    Case("Trilu", [rand(3, 4), scalar(1, I64)], const_inputs=(1,), opset=14, target="iOS15", id="Trilu-mask-iOS15"),
    Case("OneHot", [ints(0, 2, -1), scalar(3, I64), np.array([0, 1], I64)], const_inputs=(1, 2), opset=11,
         target="iOS18", id="OneHot-iOS18"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_generate(case: Case) -> None:
    check(case)


LEAN = [
    (Case("Trilu", [rand(3, 4)], opset=14), {"band_part": 1}),
    (Case("Trilu", [rand(3, 4), scalar(1, I64)], const_inputs=(1,), opset=14), {"select": 1}),
    (Case("ConstantOfShape", [ints(2, 3)], opset=9, const_inputs=(0,)), {}),
    (Case("EyeLike", [rand(3, 4)], opset=9), {}),
    (Case("OneHot", [ints(0, 2, 1), scalar(4, I64), np.array([0, 1], I64)], const_inputs=(1, 2), opset=11),
     {"one_hot": 1, "less": 1, "add": 1, "select": 1}),
]


@pytest.mark.parametrize("case,ops", LEAN, ids=lambda v: str(v) if isinstance(v, Case) else "")
def test_generate_lean(case: Case, ops: dict[str, int]) -> None:
    """Constants fold; band_part where it expresses the band (output identity not counted)."""
    model, _ = make_model(case)
    hist = {k: v for k, v in lower(model, verify=False).report["mil_ops"].items() if k != "identity"}
    assert hist == ops


def test_trilu_runtime_k_is_unsupported() -> None:
    model, _ = make_model(Case("Trilu", [rand(3, 4), scalar(1, I64)], opset=14))
    with pytest.raises(UnsupportedOpError, match="Trilu.*k is computed at run time"):
        lower(model, verify=False)
