"""TensorScatter (onnxruntime) and CausalConvWithState (onnx's reference evaluator: onnxruntime
1.32 has no kernel) vs lower + our executor."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from pipeline.lowering import lower
from tests.lowering.support import Case, check, rand, tolerance_for

PAST = rand(2, 3, 8, 4)
UPD = rand(2, 3, 2, 4, seed=1)

SCATTER = [
    Case("TensorScatter", [PAST, UPD], opset=24, id="prefill-no-indices"),
    Case("TensorScatter", [PAST, UPD, np.array([0, 0], np.int64)], opset=24, const_inputs=(2,), id="const-zero-indices"),
    Case("TensorScatter", [PAST, UPD, np.array([3, 6], np.int64)], opset=24, id="decode-indices"),
    Case("TensorScatter", [PAST, UPD, np.array([7, 5], np.int64)], {"mode": "circular"}, opset=24,
         id="circular-wraps"),
    Case("TensorScatter", [rand(2, 6, 4), rand(2, 1, 4, seed=2), np.array([1, 4], np.int64)], {"axis": 1},
         opset=24, const_inputs=(2,), id="axis1-const-indices"),
    Case("TensorScatter", [rand(2, 5, 3, dtype=np.float16), rand(2, 5, 3, dtype=np.float16, seed=3)], {"axis": -2},
         opset=24, id="fp16-full-update"),
    Case("TensorScatter", [rand(2, 3, 8, 4, dtype=np.int64), rand(2, 3, 2, 4, dtype=np.int64, seed=4),
                           np.array([2, 0], np.int64)], opset=24, id="int64-cache"),
]


@pytest.mark.parametrize("case", SCATTER, ids=str)
def test_tensor_scatter(case: Case) -> None:
    check(case)


def _causal_model(k: int, bias: bool, past: bool, activation: str, dtype: type) -> onnx.ModelProto:
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    t = helper.make_tensor_value_info
    names = ["x", "w", "b" if bias else "", "p" if past else ""]
    while names and not names[-1]:
        names.pop()
    node = helper.make_node("CausalConvWithState", names, ["y", "state"], activation=activation)
    inits = [onnx.numpy_helper.from_array(rand(4, 1, k, dtype=dtype, seed=7), "w")]
    if bias:
        inits.append(onnx.numpy_helper.from_array(rand(4, dtype=dtype, seed=8), "b"))
    inputs = [t("x", elem, [2, 4, 5])] + ([t("p", elem, [2, 4, k - 1])] if past else [])
    graph = helper.make_graph([node], "g", inputs, [t("y", elem, [2, 4, 5]), t("state", elem, [2, 4, k - 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 27)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.mark.parametrize("k, bias, past, activation, dtype", [
    (3, False, False, "none", np.float32),
    (3, True, True, "silu", np.float32),
    (4, True, True, "swish", np.float32),
    (2, False, True, "none", np.float16),
])
def test_causal_conv_with_state(k: int, bias: bool, past: bool, activation: str, dtype: type) -> None:
    model = _causal_model(k, bias, past, activation, dtype)
    feeds = {"x": rand(2, 4, 5, dtype=dtype, seed=9)}
    if past:
        feeds["p"] = rand(2, 4, k - 1, dtype=dtype, seed=10)
    expected = dict(zip(["y", "state"], ReferenceEvaluator(model).run(None, feeds)))
    actual = lower(model, target="iOS16", verify=False).predict(feeds)
    for name, exp in expected.items():
        atol, rtol = tolerance_for(exp.dtype)
        assert actual[name].dtype == exp.dtype
        np.testing.assert_allclose(actual[name], exp, atol=atol, rtol=rtol)
