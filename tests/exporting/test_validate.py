"""Checker, shape inference, onnxruntime parity and its errors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from pipeline.errors import ParityError, ValidationError
from pipeline.exporting import validate
from tests.exporting.support import relu_neg_model


def _relu_model() -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


X = np.array([[-1.0, 0.5, 2.0], [3.0, -0.25, 0.0]], dtype=np.float32)


def test_check_returns_inferred_model() -> None:
    model = relu_neg_model()
    checked = validate.check(model, "test")
    (info,) = checked.graph.value_info
    assert info.name == "h" and [d.dim_value for d in info.type.tensor_type.shape.dim] == [2, 3]


def test_check_rejects_dangling_input() -> None:
    model = _relu_model()
    model.graph.node.append(helper.make_node("Neg", ["nowhere"], ["z"], name="neg"))
    with pytest.raises(ValidationError, match="final"):
        validate.check(model, "final")


def test_check_rejects_bad_shapes() -> None:
    model = _relu_model()
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, [5]))
    with pytest.raises(ValidationError):
        validate.check(model, "final")


def test_parity_ok_against_numpy() -> None:
    report = validate.parity(_relu_model(), {"x": X}, [np.maximum(X, 0)], atol=1e-5, rtol=1e-4)
    assert report.ok and report.outputs[0].name == "y" and report.max_abs == 0.0
    validate.require(report, "final")


def test_parity_failure_names_output() -> None:
    wrong = np.maximum(X, 0) + np.float32(1e-3)
    report = validate.parity(_relu_model(), {"x": X}, [wrong], atol=1e-5, rtol=1e-4)
    assert not report.ok
    assert report.outputs[0].max_abs == pytest.approx(1e-3, rel=1e-3)
    with pytest.raises(ParityError) as info:
        validate.require(report, "final")
    assert "'y'" in str(info.value) and info.value.exit_code == 1


def test_output_count_mismatch() -> None:
    with pytest.raises(ValidationError, match="1 output"):
        validate.parity(_relu_model(), {"x": X}, [X, X])


def test_missing_feed() -> None:
    with pytest.raises(ValidationError, match="no example input"):
        validate.run_ort(_relu_model(), {"other": X})
