"""--localize names the first ONNX node whose output diverges from onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

import pipeline
from pipeline.errors import ParityError
from pipeline.lowering.registry import HANDLERS, onnx_op


def _chain_model():
    nodes = [
        helper.make_node("Add", ["x", "x"], ["a"], name="first_add"),
        helper.make_node("Relu", ["a"], ["r"], name="the_relu"),
        helper.make_node("Mul", ["r", "x"], ["y"], name="last_mul"),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", T.FLOAT, [2, 8])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_localize_reports_all_within_tolerance() -> None:
    result = pipeline.lower(_chain_model(), localize=True)
    assert result.report["localize"] == {"compared": 3, "divergence": None}


@pytest.fixture
def wrong_relu():
    """A deliberately wrong user handler: Relu lowered as sigmoid."""

    @onnx_op("Relu", since=14, user=True)
    def _bad(ctx, node):
        return ctx.mb.sigmoid(x=node.input(0))

    yield
    HANDLERS.remove("Relu", user=True)


def test_localize_names_the_diverging_node(wrong_relu) -> None:
    with pytest.raises(ParityError) as info:
        pipeline.lower(_chain_model(), localize=True, feeds={"x": np.linspace(-2, 2, 16, dtype=np.float32).reshape(2, 8)})
    message = str(info.value)
    assert "first divergence at node 'the_relu' (Relu)" in message and "output 'r'" in message
