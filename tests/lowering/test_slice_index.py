"""Lowering of Slice, Compress, NonZero and ReverseSequence, checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from pipeline.errors import UnsupportedOpError
from pipeline.lowering import lower
from pipeline.lowering.reference import run_onnxruntime
from tests.lowering.support import Case, check, make_model, rand

F16 = np.float16
I64 = np.int64
I32 = np.int32
BIG = np.iinfo(np.int64).max
SMALL = np.iinfo(np.int64).min


def ints(*values: int) -> np.ndarray:
    return np.asarray(values, I64)


X = rand(4, 5, 6)

CASES = [
    # Slice 1: attributes; default axes; ends past the dim; negative bounds.
    Case("Slice", [X], {"starts": [1, 0], "ends": [3, 100], "axes": [0, 2]}, opset=7),
    Case("Slice", [X], {"starts": [-3, 1], "ends": [-1, 1000]}, opset=9, id="Slice-v1-default-axes"),
    Case("Slice", [rand(3, 4, dtype=F16)], {"starts": [1], "ends": [BIG], "axes": [1]}, opset=7, id="Slice-v1-fp16-sentinel"),
    # Slice 10+: inputs, steps, negative steps, sentinels, negative axes.
    Case("Slice", [X, ints(1, 0), ints(3, 4), ints(0, 2)], opset=10, const_inputs=(1, 2, 3)),
    Case("Slice", [X, ints(0, 1), ints(BIG, 6), ints(1, 2), ints(2, 2)], opset=10, const_inputs=(1, 2, 3, 4),
         id="Slice-v10-steps-sentinel"),
    Case("Slice", [X, ints(-1), ints(SMALL), ints(1), ints(-1)], opset=10, const_inputs=(1, 2, 3, 4),
         id="Slice-reverse-whole-axis"),
    Case("Slice", [X, ints(BIG, 4), ints(SMALL, 0), ints(0, 2), ints(-2, -3)], opset=10, const_inputs=(1, 2, 3, 4),
         id="Slice-negative-steps-sentinels"),
    Case("Slice", [X, ints(3), ints(0), ints(-1), ints(-1)], opset=11, const_inputs=(1, 2, 3, 4),
         id="Slice-negative-step-stops-before-0"),
    Case("Slice", [X, ints(-4, 2), ints(-1, -1), ints(-1, -3)], opset=13, const_inputs=(1, 2, 3),
         id="Slice-negative-axes-and-bounds"),
    Case("Slice", [X, ints(0), ints(BIG), ints(1)], opset=13, const_inputs=(1, 2, 3), id="Slice-whole-tensor"),
    Case("Slice", [X, ints(1, 1, 1), ints(-1, -1, -1)], opset=13, const_inputs=(1, 2), id="Slice-default-axes"),
    Case("Slice", [rand(6, 4, dtype=F16), ints(5), ints(-7), ints(0), ints(-2)], opset=13, const_inputs=(1, 2, 3, 4),
         id="Slice-fp16-negative-step"),
    Case("Slice", [rand(3, 8, dtype=I64, low=-9, high=9), ints(2), ints(7), ints(1), ints(3)], opset=13,
         const_inputs=(1, 2, 3, 4), id="Slice-int64-data"),
    Case("Slice", [rand(3, 8, dtype=bool), ints(1), ints(3), ints(0)], opset=13, const_inputs=(1, 2, 3),
         id="Slice-bool-data"),
    # Run-time starts/ends (dynamic begin/end of slice_by_index).
    Case("Slice", [X, ints(1, 2), ints(3, 5), ints(0, 2)], opset=13, const_inputs=(3,), id="Slice-runtime-bounds"),
    Case("Slice", [X, ints(-3, 0, 1), ints(BIG, 4, -1)], opset=13, id="Slice-runtime-all-axes"),
    Case("Slice", [X, ints(4, 5), ints(SMALL, 1), ints(1, 2), ints(-1, -2)], opset=13, const_inputs=(2, 3, 4),
         id="Slice-runtime-starts-negative-steps"),
    Case("Slice", [X, ints(1), ints(-2), ints(-1)], opset=13, const_inputs=(1, 3), id="Slice-runtime-ends"),
    # Compress: constant and run-time conditions, with and without axis.
    Case("Compress", [X, np.array([True, False, True, True])], {"axis": 0}, opset=9, const_inputs=(1,)),
    Case("Compress", [X, np.array([False, True, False, True, True])], {"axis": -2}, opset=11,
         id="Compress-runtime-negative-axis"),
    Case("Compress", [rand(3, 4), np.array([True, False, True])], {"axis": 1}, opset=11, id="Compress-short-condition"),
    Case("Compress", [rand(2, 3, dtype=F16), np.array([False, True, True, False, True, True])], opset=11,
         id="Compress-flattened-fp16"),
    Case("Compress", [rand(2, 3, dtype=I64, low=-9, high=9), np.array([True, False, True, True])], opset=9,
         const_inputs=(1,), id="Compress-flattened-int64-const"),
    Case("Compress", [rand(4, 2, dtype=bool), np.array([True, False, False, True])], {"axis": 0}, opset=11,
         id="Compress-bool-data"),
    # NonZero: [rank, N] coordinates in row-major order.
    Case("NonZero", [np.array([[0, 1.5, 0], [2.0, 0, -3.0]], np.float32)], opset=9),
    Case("NonZero", [rand(2, 3, 4, dtype=I64, low=-1, high=1)], opset=13, id="NonZero-int64-3d"),
    Case("NonZero", [rand(5, 3, dtype=bool)], opset=13, id="NonZero-bool"),
    Case("NonZero", [np.array([0, 1, 0, 2], F16)], opset=13, id="NonZero-fp16"),
    # ReverseSequence: both axis layouts.
    Case("ReverseSequence", [rand(4, 3, 2), ints(4, 1, 3)], {"batch_axis": 1, "time_axis": 0}, opset=10),
    Case("ReverseSequence", [rand(3, 5, dtype=F16), ints(2, 5, 1)], {"batch_axis": 0, "time_axis": 1}, opset=10,
         id="ReverseSequence-batch-major-fp16"),
    Case("ReverseSequence", [rand(3, 4, dtype=I64, low=-9, high=9), ints(1, 4, 2)], {"batch_axis": 0, "time_axis": 1},
         opset=10, const_inputs=(1,), id="ReverseSequence-int64-const-lengths"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_slice_index(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", [
    Case("Slice", [X, ints(1), ints(3), ints(0)], opset=13, const_inputs=(1, 2, 3), target="iOS17", id="Slice-iOS17"),
    Case("Compress", [X, np.array([True, False, True, True])], {"axis": 0}, opset=11, target="iOS17",
         id="Compress-iOS17"),
], ids=str)
def test_slice_index_ios17(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", [
    Case("Slice", [X, ints(0), ints(3), ints(0), ints(2)], opset=13, const_inputs=(1, 2, 3),
         id="Slice-runtime-steps"),
    Case("Slice", [X, ints(0), ints(3), ints(0)], opset=13, const_inputs=(1, 2), id="Slice-runtime-axes"),
], ids=str)
def test_slice_runtime_axes_or_steps_unsupported(case: Case) -> None:
    """MIL's stride and the axis layout are conversion-time constants: a clear error, naming the node."""
    model, _ = make_model(case)
    with pytest.raises(UnsupportedOpError, match="Slice_node.*constant"):
        lower(model, verify=False)


def _symbolic_slice_model(starts: list, ends: list, axes: list, steps: list) -> onnx.ModelProto:
    """Slice of x[N, 6] with a symbolic N: bounds cannot be resolved at conversion time."""
    inits = [onnx.numpy_helper.from_array(np.asarray(v, I64), n)
             for n, v in (("s", starts), ("e", ends), ("a", axes), ("t", steps))]
    graph = helper.make_graph(
        [helper.make_node("Slice", ["x", "s", "e", "a", "t"], ["y"])], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["M", "K"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 9
    return model


@pytest.mark.parametrize("bounds", [
    ([1], [BIG], [0], [1]),
    ([BIG], [SMALL], [0], [-1]),
    ([-2], [SMALL], [0], [-2]),
    ([SMALL, 1], [-1, BIG], [0, 1], [1, 2]),
], ids=str)
def test_slice_symbolic_dim(bounds: tuple) -> None:
    """Unresolved bounds keep numpy clamping; sentinels become begin/end masks."""
    model = _symbolic_slice_model(*bounds)
    feeds = {"x": rand(5, 6)}
    expected = run_onnxruntime(model, feeds)["y"]
    actual = lower(model, verify=False, flexible={"x": {0: (1, 16)}}).predict(feeds)["y"]
    np.testing.assert_array_equal(actual, expected)
