"""Custom layers: MIL custom ops with bindings, neural-network conversion, executor parity via the
ONNX reference evaluator, refusal with ML Programs, and the generated Swift/Metal sources."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from pipeline.errors import LoweringError
from pipeline.lowering import lower
from pipeline.lowering.reference import run_onnxruntime
from tests.lowering.support import Case, make_model, rand, tolerance_for


def _topk_model(k: int = 3, axis: int = -1, largest: int = 1) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 9])
    shape = [4, 9]
    shape[axis] = k
    v = helper.make_tensor_value_info("v", TensorProto.FLOAT, shape)
    i = helper.make_tensor_value_info("i", TensorProto.INT64, shape)
    kk = onnx.numpy_helper.from_array(np.array([k], np.int64), "k")
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"], name="topk", axis=axis, largest=largest)
    return helper.make_model(helper.make_graph([node], "g", [x], [v, i], [kk]),
                             opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("axis,largest", [(-1, 1), (0, 0)])
def test_topk_custom_layer_parity_and_bindings(axis: int, largest: int) -> None:
    model = _topk_model(3, axis, largest)
    feeds = {"x": rand(4, 9)}
    result = lower(model, backend="neuralnetwork", custom_layers=["TopK"], feeds=feeds)
    expected = run_onnxruntime(model, feeds)
    actual = result.predict(feeds)
    np.testing.assert_array_equal(actual["v"], expected["v"])
    np.testing.assert_array_equal(actual["i"], expected["i"])
    (layer,) = result.mlmodel.get_spec().neuralNetwork.layers
    assert layer.custom.className == "TopKLayer"
    params = {k: v.intValue for k, v in layer.custom.parameters.items()}
    assert params == {"k": 3, "axis": axis, "largest": largest, "sorted": 1}
    assert result.report["nodes"][0]["kind"] == "custom_layer"
    (binding,) = result.report["custom_layers"]["TopKLayer"]
    assert binding["input_order"] == ["x0"] and binding["parameters"] == ["k", "axis", "largest", "sorted"]


def test_custom_layer_refused_with_ml_program() -> None:
    with pytest.raises(LoweringError, match="only in neural-network models.*composite"):
        lower(_topk_model(), custom_layers=["TopK"], verify=False)


def test_all_unsupported_makes_unlowered_ops_custom_layers() -> None:
    """BitCast has no handler: all-unsupported turns it into a layer; Relu stays native."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, [2, 5])
    nodes = [helper.make_node("BitCast", ["x"], ["d"], name="bits", to=TensorProto.INT32),
             helper.make_node("Relu", ["d"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 26)])
    feeds = {"x": rand(2, 5)}
    result = lower(model, backend="neuralnetwork", custom_layers="all-unsupported", feeds=feeds)
    kinds = [(n["op_type"], n["kind"]) for n in result.report["nodes"]]
    assert kinds == [("BitCast", "custom_layer"), ("Relu", "native")]
    np.testing.assert_array_equal(result.predict(feeds)["y"], np.maximum(feeds["x"].view(np.int32), 0))


def test_clip_layer_with_constant_bounds_as_parameters() -> None:
    case = Case("Clip", [rand(3, 4), np.array(-0.5, np.float32), np.array(0.75, np.float32)], opset=13, const_inputs=(1, 2))
    model, feeds = make_model(case)
    result = lower(model, backend="neuralnetwork", custom_layers=["Clip"], feeds=feeds)
    expected = run_onnxruntime(model, feeds)["out0"]
    atol, rtol = tolerance_for(expected.dtype)
    np.testing.assert_allclose(result.predict(feeds)["out0"], expected, atol=atol, rtol=rtol)
    params = result.mlmodel.get_spec().neuralNetwork.layers[0].custom.parameters
    assert params["min"].doubleValue == -0.5 and params["max"].doubleValue == 0.75


def test_swift_and_metal_are_generated_next_to_the_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = lower(_topk_model(), tmp_path / "topk.mlmodel", backend="neuralnetwork", custom_layers=["TopK"])
    folder = tmp_path / "topk_custom_layers"
    swift = (folder / "TopKLayer.swift").read_text()
    for needle in ("@objc(TopKLayer)", "MLCustomLayer", "init(parameters: [String: Any])",
                   "func setWeightData", "func outputShapes(forInputShapes", "func evaluate(inputs:",
                   'parameters["k"] as? Int', "encodeOnceKernelIsWritten"):
        assert needle in swift, needle
    assert "kernel void top_k_layer" in (folder / "TopKLayer.metal").read_text()
    assert "Xcode" in (folder / "README.md").read_text()
    assert sorted(result.report["custom_layer_files"]) == sorted(str(p) for p in folder.iterdir())


def test_todo_body_for_ops_we_do_not_know(tmp_path) -> None:  # type: ignore[no-untyped-def]
    case = Case("Softsign", [rand(2, 3)], opset=13)
    model, feeds = make_model(case)
    lower(model, tmp_path / "m.mlmodel", backend="neuralnetwork", custom_layers=["Softsign"], feeds=feeds)
    swift = (tmp_path / "m_custom_layers" / "SoftsignLayer.swift").read_text()
    assert "TODO(issue 5)" in swift and "LayerError.notImplemented" in swift


@pytest.mark.skipif(shutil.which("swiftc") is None, reason="no Swift toolchain (swiftc) on this machine")
def test_generated_swift_parses(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pipeline.lowering.custom_layers.spec import LayerSpec, Slot
    from pipeline.lowering.custom_layers.swift import write_layers

    specs = {
        name: [LayerSpec(name, op, domain, 1, (Slot("tensor", "x0"),), params, tuple(p for p, _ in params), n)]
        for name, op, domain, params, n in [
            ("TopKLayer", "TopK", "", (("k", "int"), ("axis", "int"), ("largest", "int"), ("sorted", "int")), 2),
            ("PipelineCustomHardTanhLayer", "HardTanh", "pipeline.custom", (("min_val", "float"), ("max_val", "float")), 1),
            ("ClipLayer", "Clip", "", (("min", "float"), ("max", "float")), 1),
            ("MaxLayer", "Max", "", (), 1),
            ("SoftsignLayer", "Softsign", "", (("note", "json"),), 1),
        ]
    }
    files = [p for p in write_layers(specs, tmp_path) if p.suffix == ".swift"]
    done = subprocess.run(["swiftc", "-parse", *map(str, files)], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
