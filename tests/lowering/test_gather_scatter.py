"""Lowering of Gather*, Scatter* ops, checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from pipeline.errors import PipelineError
from pipeline.lowering import lower
from pipeline.lowering.reference import run_onnxruntime
from tests.lowering.support import Case, check, make_model, rand

F16 = np.float16
I64 = np.int64
I32 = np.int32


def ints(values: list, dtype: type = I64) -> np.ndarray:
    return np.asarray(values, dtype)


X = rand(4, 5, 3)
IDX_ELEM = ints([[[0, 3, -1], [2, -4, 1]], [[1, 1, 0], [-1, 3, 2]]])  # [2, 2, 3] into axis 0 of size 4

GATHER = [
    Case("Gather", [X, ints([0, 3, -1, 2])], opset=7),
    Case("Gather", [X, ints([[4, -5], [0, -1]])], {"axis": 1}, opset=11, id="Gather-negative-2d-indices"),
    Case("Gather", [X, ints([[2, -1]])], {"axis": -1}, opset=13, const_inputs=(1,), id="Gather-const-negative"),
    Case("Gather", [X, np.array(-2, I64)], {"axis": 1}, opset=13, id="Gather-scalar-index"),
    Case("Gather", [rand(6, 2, dtype=F16), ints([5, 0, 5], I32)], opset=13, id="Gather-fp16-int32-indices"),
    Case("Gather", [rand(6, dtype=I64, low=-9, high=9), ints([1, -1, 2])], opset=13, id="Gather-int64-data"),
    Case("Gather", [rand(3, 4, dtype=bool), ints([3, -3])], {"axis": 1}, opset=13, id="Gather-bool-data"),
    Case("Gather", [X, ints([[0, 3, -1]])], const_inputs=(0,), opset=13, id="Gather-const-table"),
    Case("GatherElements", [rand(4, 3), ints([[0, 3, -1], [2, -4, 1]])], opset=11),
    Case("GatherElements", [X, ints([[[1, -1, 0]] * 5] * 4).reshape(4, 5, 3)], {"axis": -1}, opset=13,
         id="GatherElements-last-axis"),
    Case("GatherElements", [X, IDX_ELEM], {"axis": 0}, opset=13, id="GatherElements-smaller-indices"),
    Case("GatherElements", [rand(3, 3, dtype=F16), ints([[2, 0, 1], [1, 1, 1]], I32)], {"axis": 0}, opset=13,
         id="GatherElements-fp16"),
    Case("GatherND", [rand(4, 5), ints([[0, 1], [3, -1], [-4, 2]])], opset=11),
    Case("GatherND", [X, ints([[1], [-1]])], opset=12, id="GatherND-slices"),
    Case("GatherND", [rand(2, 4, 3), ints([[[1, 2], [3, 0]], [[-1, -1], [0, 1]]])], {"batch_dims": 1}, opset=12,
         id="GatherND-batch-dims"),
    Case("GatherND", [rand(3, 4, dtype=F16), ints([[2, 3], [0, 0]], I64)], opset=13, const_inputs=(1,),
         id="GatherND-fp16-const"),
    Case("GatherND", [rand(3, 4, dtype=I64, low=-9, high=9), ints([[2], [0]])], opset=13, id="GatherND-int64"),
]

SCAT_IDX = ints([[1, 0, 2], [0, 2, 1]])  # no duplicates within a column
SCATTER = [
    Case("Scatter", [rand(3, 3), SCAT_IDX, rand(2, 3, seed=1)], {"axis": 0}, opset=9),
    Case("Scatter", [rand(3, 4), ints([[-1, 0], [2, 1], [0, 3]]), rand(3, 2, seed=1)], {"axis": 1}, opset=10,
         id="Scatter-axis1-smaller-negative"),
    Case("ScatterElements", [rand(3, 3), SCAT_IDX, rand(2, 3, seed=1)], {"axis": 0}, opset=11),
    Case("ScatterElements", [rand(2, 4), ints([[-1, 0, 1, 2], [3, 2, -4, 0]]), rand(2, 4, seed=1)], {"axis": -1},
         opset=13, id="ScatterElements-negative"),
    Case("ScatterElements", [rand(3, 3), ints([[1, 1, 0], [1, 2, 0]]), rand(2, 3, seed=1)], {"reduction": "add"},
         opset=16, id="ScatterElements-add-duplicates"),
    Case("ScatterElements", [rand(3, 3), ints([[1, 1, 0], [1, 2, 0]]), rand(2, 3, seed=1)], {"reduction": "mul"},
         opset=16, id="ScatterElements-mul"),
    Case("ScatterElements", [rand(3, 3), ints([[1, 1, 0], [1, 2, 0]]), rand(2, 3, seed=1)], {"reduction": "max"},
         opset=18, id="ScatterElements-max"),
    Case("ScatterElements", [rand(3, 3), ints([[1, 1, 0], [1, 2, 0]]), rand(2, 3, seed=1)], {"reduction": "min"},
         opset=18, id="ScatterElements-min"),
    Case("ScatterElements", [rand(4, 3), ints([[3, 0], [-1, 1]]), rand(2, 2, seed=1)], {"axis": 0, "reduction": "add"},
         opset=18, id="ScatterElements-smaller-indices-add"),
    Case("ScatterElements", [rand(4, 3), ints([[3, 0], [-1, 1]]), rand(2, 2, seed=1)], {"axis": 0}, opset=18,
         const_inputs=(1,), id="ScatterElements-smaller-const-indices"),
    Case("ScatterElements", [rand(3, 3, dtype=F16), SCAT_IDX, rand(2, 3, dtype=F16, seed=1)], opset=13,
         id="ScatterElements-fp16"),
    Case("ScatterElements", [rand(3, 3, dtype=I64, low=-9, high=9), SCAT_IDX, rand(2, 3, dtype=I64, low=-9, high=9)],
         opset=13, id="ScatterElements-int64"),
    Case("ScatterElements", [rand(3, 3, dtype=bool), SCAT_IDX, rand(2, 3, dtype=bool, seed=3)], opset=13,
         id="ScatterElements-bool"),
    Case("ScatterND", [rand(4, 3), ints([[1], [-1]]), rand(2, 3, seed=1)], opset=11),
    Case("ScatterND", [rand(4, 3), ints([[1, 2], [0, -1], [3, 0]]), rand(3, seed=1)], opset=13, id="ScatterND-elements"),
    Case("ScatterND", [rand(4, 3), ints([[1], [1], [2]]), rand(3, 3, seed=1)], {"reduction": "add"}, opset=16,
         id="ScatterND-add"),
    Case("ScatterND", [rand(4, 3), ints([[1], [1], [2]]), rand(3, 3, seed=1)], {"reduction": "mul"}, opset=16,
         id="ScatterND-mul"),
    Case("ScatterND", [rand(4, 3), ints([[1], [1], [2]]), rand(3, 3, seed=1)], {"reduction": "max"}, opset=18,
         id="ScatterND-max"),
    Case("ScatterND", [rand(4, 3), ints([[1], [1], [2]]), rand(3, 3, seed=1)], {"reduction": "min"}, opset=18,
         id="ScatterND-min"),
    Case("ScatterND", [rand(2, 3, dtype=F16), ints([[0, 2]]), rand(1, dtype=F16, seed=1)], opset=13,
         const_inputs=(1,), id="ScatterND-fp16-const"),
    Case("ScatterND", [rand(4, dtype=I64, low=-9, high=9), ints([[3], [0]]), ints([7, -7])], opset=13,
         id="ScatterND-int64"),
]


@pytest.mark.parametrize("case", GATHER + SCATTER, ids=str)
def test_gather_scatter(case: Case) -> None:
    check(case)


# iOS17 rejects negative indices in MIL: the lowering wraps run-time ones with mod.
IOS17 = [
    Case("Gather", [X, ints([[4, -5], [0, -1]])], {"axis": 1}, opset=13, target="iOS17", id="Gather-iOS17-negative"),
    Case("GatherElements", [X, IDX_ELEM], {"axis": 0}, opset=13, target="iOS17", id="GatherElements-iOS17-negative"),
    Case("GatherND", [rand(4, 5), ints([[0, 1], [3, -1], [-4, 2]])], opset=13, target="iOS17",
         id="GatherND-iOS17-negative"),
    Case("GatherND", [rand(2, 4, 3), ints([[[1, 2], [3, 0]], [[-1, -1], [0, 1]]])], {"batch_dims": 1}, opset=13,
         target="iOS17", id="GatherND-iOS17-batch-negative"),
    Case("ScatterElements", [rand(2, 4), ints([[-1, 0, 1, 2], [3, 2, -4, 0]]), rand(2, 4, seed=1)], {"axis": -1},
         opset=13, target="iOS17", id="ScatterElements-iOS17-negative"),
    Case("ScatterND", [rand(4, 3), ints([[1, 2], [0, -1], [3, 0]]), rand(3, seed=1)], opset=13, target="iOS17",
         id="ScatterND-iOS17-negative"),
    Case("Gather", [X, ints([0, -1])], {"axis": 2}, opset=13, target="iOS17", const_inputs=(1,),
         id="Gather-iOS17-const-negative"),
]


@pytest.mark.parametrize("case", IOS17, ids=str)
def test_gather_scatter_ios17(case: Case) -> None:
    check(case)


def test_gather_nd_batch_dims_raises_ios15_target() -> None:
    """GatherND batch_dims needs iOS16: an iOS15 request is raised to iOS16 automatically."""
    case = Case("GatherND", [rand(2, 4, 3), ints([[[1, 2]], [[0, 1]]])], {"batch_dims": 1}, opset=13, target="iOS15")
    check(case)
    model, _ = make_model(case)
    assert lower(model, target="iOS15", verify=False).report["target"] == "iOS16"
    with pytest.raises(PipelineError, match="iOS16"):
        lower(model, target="iOS15", raise_target=False, verify=False)


def test_gather_elements_symbolic_dim_ios17() -> None:
    """iOS17 with a symbolic axis size: negative indices wrap by the run-time dim (shape + gather + mod)."""
    graph = helper.make_graph(
        [helper.make_node("GatherElements", ["x", "i"], ["y"], axis=0)], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("i", onnx.TensorProto.INT64, [2, 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 9
    feeds = {"x": rand(2, 3), "i": ints([[0, -1, 1], [-2, 1, -1]])}
    expected = run_onnxruntime(model, feeds)["y"]
    actual = lower(model, target="iOS17", verify=False, flexible={"x": {0: (1, 8)}}).predict(feeds)["y"]
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("idx", [np.arange(12).reshape(1, 12, 1), np.arange(12) - 12],
                         ids=["arange-4d-shape", "negative-arange"])
def test_gather_reading_every_element_in_order_is_a_reshape(idx: np.ndarray) -> None:
    # torch's as_strided on a contiguous tensor: Gather(flat, arange(n).reshape(shape)).
    case = Case("Gather", [rand(12), idx.astype(I64)], opset=13, const_inputs=(1,))
    check(case)
    model, _ = make_model(case)
    ops = [op.op_type for op in lower(model, target="iOS16", verify=False).program.functions["main"].operations]
    assert "gather" not in ops


def test_gather_permuting_a_flat_tensor_stays_a_gather() -> None:
    case = Case("Gather", [rand(4), ints([1, 0, 2, 3])], opset=13, const_inputs=(1,))
    check(case)
    model, _ = make_model(case)
    ops = [op.op_type for op in lower(model, target="iOS16", verify=False).program.functions["main"].operations]
    assert "gather" in ops
