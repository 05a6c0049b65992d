"""Lowering of TopK and CumSum, checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import UnsupportedOpError
from pipeline.lowering import lower
from pipeline.lowering.reference import run_onnxruntime
from tests.lowering.support import Case, check, make_model, rand

F16 = np.float16
I64 = np.int64
I32 = np.int32

# Repeated values: ONNX puts the lower index first among equal values.
TIES = np.array([[3, 1, 3, 2, 1, 3], [0, 0, 5, 5, 0, 1]], np.float32)

CASES = [
    Case("TopK", [rand(3, 7)], {"k": 3}, opset=9, n_outputs=2, id="TopK-v1-attr"),
    Case("TopK", [rand(4, 5, 2), np.array([2], I64)], {"axis": 1}, opset=10, const_inputs=(1,), n_outputs=2),
    Case("TopK", [rand(4, 6), np.array([4], I64)], {"axis": -1, "largest": 0}, opset=11, const_inputs=(1,),
         n_outputs=2, id="TopK-smallest"),
    Case("TopK", [TIES, np.array([4], I64)], {"axis": 1}, opset=11, const_inputs=(1,), n_outputs=2, id="TopK-ties-largest"),
    Case("TopK", [TIES, np.array([4], I64)], {"axis": 1, "largest": 0}, opset=11, const_inputs=(1,), n_outputs=2,
         id="TopK-ties-smallest"),
    Case("TopK", [rand(2, 8, dtype=F16), np.array([3], I64)], opset=11, const_inputs=(1,), n_outputs=2, id="TopK-fp16"),
    Case("TopK", [rand(2, 8, dtype=I64, low=-50, high=50), np.array([3], I64)], opset=11, const_inputs=(1,),
         n_outputs=2, id="TopK-int64"),
    Case("CumSum", [rand(3, 4), np.array(1, I64)], opset=11, const_inputs=(1,)),
    Case("CumSum", [rand(3, 4), np.array([0], I32)], {"exclusive": 1}, opset=11, const_inputs=(1,), id="CumSum-exclusive"),
    Case("CumSum", [rand(3, 4), np.array(-1, I64)], {"reverse": 1}, opset=14, const_inputs=(1,), id="CumSum-reverse"),
    Case("CumSum", [rand(2, 3, 4), np.array(-2, I64)], {"exclusive": 1, "reverse": 1}, opset=14, const_inputs=(1,),
         id="CumSum-exclusive-reverse"),
    Case("CumSum", [rand(16, dtype=F16, low=0, high=1), np.array(0, I64)], opset=14, const_inputs=(1,), id="CumSum-fp16"),
    Case("CumSum", [rand(3, 5, dtype=I64, low=-9, high=9), np.array(1, I64)], opset=14, const_inputs=(1,),
         id="CumSum-int64"),
    Case("CumSum", [rand(3, 5, dtype=I32, low=-9, high=9), np.array(0, I32)], {"reverse": 1}, opset=14,
         const_inputs=(1,), id="CumSum-int32-reverse"),
    # A constant x is folded at conversion time (coremltools cannot fold an exclusive cumsum).
    Case("CumSum", [rand(5, dtype=I32, low=-9, high=9), np.array(0, I32)], {"exclusive": 1}, opset=14,
         const_inputs=(0, 1), id="CumSum-const-exclusive"),
    Case("CumSum", [rand(2, 3, 4), np.array(1, I64)], {"exclusive": 1, "reverse": 1}, opset=14,
         const_inputs=(0, 1), id="CumSum-const-exclusive-reverse"),
    Case("CumSum", [rand(3, 4), np.array(-1, I64)], {"reverse": 1}, opset=14, const_inputs=(0, 1),
         id="CumSum-const-reverse"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_sorting(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", [
    Case("TopK", [rand(5, 3), np.array([5], I64)], {"axis": -2, "sorted": 0}, opset=11, const_inputs=(1,),
         n_outputs=2, id="TopK-unsorted-negative-axis-all"),
    Case("TopK", [rand(2, 9), np.array([4], I64)], {"sorted": 0, "largest": 0}, opset=11, const_inputs=(1,),
         n_outputs=2, id="TopK-unsorted-smallest"),
], ids=str)
def test_topk_unsorted(case: Case) -> None:
    """sorted=0 leaves the order unspecified: compare the selected (index, value) sets along the axis."""
    model, feeds = make_model(case)
    expected = run_onnxruntime(model, feeds)
    actual = lower(model, target=case.target, verify=False).predict(feeds)
    axis = int(case.attrs.get("axis", -1))
    got_order = np.argsort(actual["out1"], axis=axis)
    want_order = np.argsort(expected["out1"], axis=axis)
    for name in ("out1", "out0"):
        np.testing.assert_array_equal(np.take_along_axis(actual[name], got_order, axis),
                                      np.take_along_axis(expected[name], want_order, axis))


REPEATS = np.array([[2.0, -1.0, 2.0], [0.5, -1.0, 7.0], [0.5, 2.0, 2.0]], np.float32)
UNIQUE = [
    Case("Unique", [REPEATS], opset=11, n_outputs=4, id="Unique-sorted-flattened"),
    Case("Unique", [REPEATS.reshape(-1)], {"sorted": 0}, opset=11, n_outputs=4, id="Unique-first-occurrence"),
    Case("Unique", [np.array([3, 1, 3, 3, -2, 1], I64)], {"axis": 0}, opset=11, n_outputs=4, id="Unique-int64-axis"),
    Case("Unique", [np.array([1, 0, 1, 2, 0], F16)], {"sorted": 0}, opset=11, n_outputs=4, id="Unique-fp16"),
    Case("Unique", [np.array([1.0, 1.0], np.float32)], opset=11, n_outputs=1, id="Unique-values-only"),
]


@pytest.mark.parametrize("case", UNIQUE, ids=str)
def test_unique(case: Case) -> None:
    check(case)


def test_topk_runtime_k_unsupported() -> None:
    """MIL's topk takes a constant k: a run-time K is a clear error naming the node."""
    model, _ = make_model(Case("TopK", [rand(2, 5), np.array([2], I64)], opset=11, n_outputs=2))
    with pytest.raises(UnsupportedOpError, match="TopK_node.*K"):
        lower(model, verify=False)
