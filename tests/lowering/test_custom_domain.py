"""Lowering of the pipeline.custom domain, checked against numpy references of DOMAIN.md."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

import symbolics  # noqa: F401  (registers the domain's schemas with onnx.defs)
from pipeline.lowering import lower
from tests.lowering.support import rand, tolerance_for

DOMAIN = "pipeline.custom"


def one_node(op: str, x: np.ndarray, **attrs: float) -> onnx.ModelProto:
    elem = helper.np_dtype_to_tensor_dtype(x.dtype)
    node = helper.make_node(op, ["x"], ["y"], domain=DOMAIN, **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", elem, list(x.shape))],
                              [helper.make_tensor_value_info("y", elem, list(x.shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(DOMAIN, 1)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.mark.parametrize(
    ("x", "lo", "hi"),
    [
        (rand(2, 3, 4, low=-8, high=8), -1.0, 1.0),
        (rand(2, 3, 4, low=-8, high=8), 0.0, 6.0),
        (rand(5, 7, dtype=np.float16, low=-8, high=8), -0.5, 2.5),
        (rand(6, low=-3, high=3), 1.0, -1.0),  # min > max: every element is max_val
    ],
    ids=["fp32", "relu6", "fp16", "min-gt-max"],
)
def test_hard_tanh(x: np.ndarray, lo: float, hi: float) -> None:
    model = one_node("HardTanh", x, min_val=lo, max_val=hi)
    actual = lower(model, verify=False).predict({"x": x})["y"]
    dtype = x.dtype.type
    expected = np.minimum(np.maximum(x, dtype(lo)), dtype(hi))
    assert actual.dtype == x.dtype
    atol, rtol = tolerance_for(x.dtype)
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=rtol)
