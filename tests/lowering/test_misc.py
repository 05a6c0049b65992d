"""Dropout and the Optional ops: onnxruntime vs lower + our executor."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from pipeline.errors import PipelineError, UnsupportedOpError
from pipeline.lowering import lower
from pipeline.lowering.reference import run_onnxruntime
from tests.lowering.support import Case, check, rand, tolerance_for

X = rand(2, 3, 4)

DROPOUT = [
    Case("Dropout", [X], opset=7, id="dropout-7"),
    Case("Dropout", [X], {"ratio": 0.3}, opset=10, id="dropout-10"),
    Case("Dropout", [X, np.array(0.2, np.float32)], opset=12, const_inputs=(1,), n_outputs=2, id="dropout-12-ratio"),
    Case("Dropout", [X, np.array(0.2, np.float32), np.array(False)], opset=13, const_inputs=(1, 2),
         n_outputs=2, id="dropout-13-training-false"),
    Case("Dropout", [X, np.array(0.0, np.float32), np.array(True)], opset=13, const_inputs=(1, 2),
         n_outputs=2, id="dropout-13-training-ratio0"),
    Case("Dropout", [rand(3, 5, dtype=np.float16)], opset=22, n_outputs=2, id="dropout-22-fp16"),
    Case("Dropout", [X, np.array(0.0, np.float32), np.array(True)], opset=22, const_inputs=(1,), n_outputs=2,
         id="dropout-22-runtime-training-ratio0"),
]


@pytest.mark.parametrize("case", DROPOUT, ids=str)
def test_dropout(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("opset, mask_type", [(7, TensorProto.FLOAT), (10, TensorProto.BOOL)])
def test_dropout_legacy_mask(opset: int, mask_type: int) -> None:
    """Opsets 7-11: the mask is all ones/true, as onnx's reference evaluator says (the spec of 12+
    names the kept elements).  onnxruntime's legacy kernels return zeros here, so they are not
    the reference for this output."""
    nodes = [helper.make_node("Dropout", ["x"], ["y", "mask"], ratio=0.3)]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4]),
               helper.make_tensor_value_info("mask", mask_type, [2, 3, 4])]
    _compare(_model(nodes, outputs, opset, X), {"x": X}, reference="onnx")


def _model(nodes: list[onnx.NodeProto], outputs: list[onnx.ValueInfoProto], opset: int,
           x: np.ndarray) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", helper.np_dtype_to_tensor_dtype(x.dtype), list(x.shape))],
        outputs,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    return model


def _compare(model: onnx.ModelProto, feeds: dict[str, np.ndarray], reference: str = "onnxruntime") -> None:
    if reference == "onnx":
        names = [o.name for o in model.graph.output]
        types = [helper.tensor_dtype_to_np_dtype(o.type.tensor_type.elem_type) for o in model.graph.output]
        # onnx's evaluator returns Dropout-7's mask as bool; the opset-7 schema types it T.
        results = ReferenceEvaluator(model).run(None, feeds)
        expected = {n: np.asarray(r).astype(t) for n, r, t in zip(names, results, types)}
    else:
        expected = run_onnxruntime(model, feeds)
    actual = lower(model, target="iOS16", verify=False).predict(feeds)
    for name, exp in expected.items():
        atol, rtol = tolerance_for(exp.dtype)
        assert actual[name].dtype == exp.dtype
        np.testing.assert_allclose(actual[name], exp, atol=atol, rtol=rtol)


def test_dropout_training_rejected() -> None:
    case = Case("Dropout", [X, np.array(0.5, np.float32), np.array(True)], opset=13, const_inputs=(1, 2))
    node = helper.make_node("Dropout", ["x", "r", "t"], ["y"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])],
        [onnx.numpy_helper.from_array(case.inputs[1], "r"), onnx.numpy_helper.from_array(case.inputs[2], "t")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(UnsupportedOpError, match="eval mode"):
        lower(model, target="iOS16", verify=False)


def _optional_roundtrip_graph() -> tuple[list[onnx.NodeProto], list[onnx.ValueInfoProto]]:
    """Optional(x) -> OptionalHasElement (has), OptionalGetElement -> Relu (y)."""
    nodes = [
        helper.make_node("Optional", ["x"], ["opt"]),
        helper.make_node("OptionalHasElement", ["opt"], ["has"]),
        helper.make_node("OptionalGetElement", ["opt"], ["got"]),
        helper.make_node("Relu", ["got"], ["y"]),
    ]
    outputs = [helper.make_tensor_value_info("has", TensorProto.BOOL, []),
               helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])]
    return nodes, outputs


@pytest.mark.parametrize("opset", [15, 18])
def test_optional_roundtrip(opset: int) -> None:
    """Optional(x) -> OptionalHasElement, OptionalGetElement -> Relu."""
    nodes, outputs = _optional_roundtrip_graph()
    _compare(_model(nodes, outputs, opset, X), {"x": X})


def test_optional_roundtrip_opset28() -> None:
    """Opset 28: onnxruntime 1.32 has no kernels and onnx's evaluator returns a list from
    OptionalGetElement, so numpy states the expected values: has = true, y = relu(x)."""
    nodes, outputs = _optional_roundtrip_graph()
    actual = lower(_model(nodes, outputs, 28, X), target="iOS16", verify=False).predict({"x": X})
    assert actual["has"].dtype == np.bool_ and bool(actual["has"])
    np.testing.assert_array_equal(actual["y"], np.maximum(X, 0))


def test_optional_empty_and_plain_inputs() -> None:
    """Opset 18: an empty Optional has no element; a plain tensor has one and passes through."""
    empty_type = helper.make_optional_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [2, 3, 4]))
    nodes = [
        helper.make_node("Optional", [], ["empty"], type=empty_type.optional_type.elem_type),
        helper.make_node("OptionalHasElement", ["empty"], ["has_empty"]),
        helper.make_node("OptionalHasElement", ["x"], ["has_x"]),
        helper.make_node("OptionalGetElement", ["x"], ["y"]),
    ]
    outputs = [helper.make_tensor_value_info("has_empty", TensorProto.BOOL, []),
               helper.make_tensor_value_info("has_x", TensorProto.BOOL, []),
               helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])]
    xi = rand(2, 3, 4)
    _compare(_model(nodes, outputs, 18, xi), {"x": xi})


def test_optional_get_of_empty_is_reported() -> None:
    nodes = [
        helper.make_node("Optional", [], ["empty"], type=helper.make_tensor_type_proto(TensorProto.FLOAT, [2, 3, 4])),
        helper.make_node("OptionalGetElement", ["empty"], ["got"]),
        helper.make_node("Add", ["got", "x"], ["y"]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])]
    with pytest.raises(PipelineError, match="optional is empty"):
        lower(_model(nodes, outputs, 18, X), target="iOS16", verify=False)
