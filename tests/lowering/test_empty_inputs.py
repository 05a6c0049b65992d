"""Empty model inputs folded to constants (pipeline/lowering/empty_inputs.py), against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper

from pipeline.errors import UnsupportedTypeError
from pipeline.lowering import lower
from pipeline.lowering.reference import run_onnxruntime
from tests.lowering.support import rand, tolerance_for

EMPTY = [2, 0, 4]


def _model(nodes: list, inputs: list, outputs: list, inits: list | None = None, opset: int = 18) -> onnx.ModelProto:
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, inits or []),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    return model


def _axes(values: list[int]) -> onnx.TensorProto:
    return onnx.numpy_helper.from_array(np.array(values, np.int64), "axes")


def _check(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> None:
    expected = run_onnxruntime(model, feeds)
    actual = lower(model, verify=False).predict(feeds)
    for name, exp in expected.items():
        atol, rtol = tolerance_for(exp.dtype)
        assert actual[name].shape == exp.shape and actual[name].dtype == exp.dtype
        np.testing.assert_allclose(actual[name], exp, atol=atol, rtol=rtol)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceProd", "ReduceMax", "ReduceMin", "ReduceLogSumExp", "ReduceL2"])
def test_reduce_over_empty_axis_is_its_identity(op: str) -> None:
    node = helper.make_node(op, ["data", "axes"], ["y"], keepdims=1)
    model = _model([node], [helper.make_tensor_value_info("data", T.FLOAT, EMPTY)],
                   [helper.make_tensor_value_info("y", T.FLOAT, [2, 1, 4])], [_axes([1])])
    _check(model, {"data": np.zeros(EMPTY, np.float32)})


def test_folded_value_feeds_run_time_nodes() -> None:
    """The empty input leaves the interface; the other input stays and meets the folded constant."""
    nodes = [helper.make_node("ReduceSum", ["data", "axes"], ["s"], keepdims=1),
             helper.make_node("Add", ["s", "x"], ["y"])]
    model = _model(nodes, [helper.make_tensor_value_info("data", T.FLOAT, EMPTY),
                           helper.make_tensor_value_info("x", T.FLOAT, [2, 1, 4])],
                   [helper.make_tensor_value_info("y", T.FLOAT, [2, 1, 4])], [_axes([1])])
    feeds = {"data": np.zeros(EMPTY, np.float32), "x": rand(2, 1, 4)}
    _check(model, feeds)
    result = lower(model, verify=False)
    assert result.adapter.input_names == ["x"]


def test_empty_output_is_unsupported() -> None:
    node = helper.make_node("Relu", ["data"], ["y"])
    model = _model([node], [helper.make_tensor_value_info("data", T.FLOAT, EMPTY)],
                   [helper.make_tensor_value_info("y", T.FLOAT, EMPTY)])
    with pytest.raises(UnsupportedTypeError, match="output 'y' is empty"):
        lower(model, verify=False)


def test_empty_input_mixed_with_run_time_value_is_unsupported() -> None:
    node = helper.make_node("ReduceSum", ["data", "axes"], ["y"], keepdims=1)
    model = _model([node], [helper.make_tensor_value_info("data", T.FLOAT, EMPTY),
                            helper.make_tensor_value_info("axes", T.INT64, [1])],
                   [helper.make_tensor_value_info("y", T.FLOAT, [2, 1, 4])])
    with pytest.raises(UnsupportedTypeError, match="run-time value"):
        lower(model, verify=False)


def test_verify_feeds_the_empty_input_to_onnxruntime() -> None:
    """Stage two's parity check runs the ONNX model, which still declares the empty input."""
    node = helper.make_node("ReduceSum", ["data", "axes"], ["y"], keepdims=1)
    model = _model([node], [helper.make_tensor_value_info("data", T.FLOAT, EMPTY)],
                   [helper.make_tensor_value_info("y", T.FLOAT, [2, 1, 4])], [_axes([1])])
    result = lower(model)
    assert result.parity is not None and result.parity.ok
