"""SequenceMap: onnxruntime vs lower + our executor on SplitToSequence -> SequenceMap ->
ConcatFromSequence graphs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from pipeline.lowering import lower
from pipeline.lowering.reference import run_onnxruntime
from tests.lowering.support import rand, tolerance_for

T = helper.make_tensor_value_info


def _body_two_inputs() -> onnx.GraphProto:
    """(elem, other) -> (relu(elem) * other, reduce_sum(elem))."""
    nodes = [
        helper.make_node("Relu", ["e"], ["r"]),
        helper.make_node("Mul", ["r", "o"], ["m"]),
        helper.make_node("ReduceSum", ["e"], ["s"], keepdims=1),
    ]
    return helper.make_graph(nodes, "body", [T("e", TensorProto.FLOAT, None), T("o", TensorProto.FLOAT, None)],
                             [T("m", TensorProto.FLOAT, None), T("s", TensorProto.FLOAT, None)])


def _model(extra_is_sequence: bool) -> onnx.ModelProto:
    nodes = [helper.make_node("SplitToSequence", ["x"], ["seq"], axis=0)]
    extra = "w"
    if extra_is_sequence:
        nodes.append(helper.make_node("SplitToSequence", ["w"], ["wseq"], axis=0))
        extra = "wseq"
    nodes += [
        helper.make_node("SequenceMap", ["seq", extra], ["ms", "ss"], body=_body_two_inputs()),
        helper.make_node("ConcatFromSequence", ["ms"], ["y"], axis=0),
        helper.make_node("ConcatFromSequence", ["ss"], ["z"], axis=0),
    ]
    w_shape = [4, 3] if extra_is_sequence else [1, 3]
    graph = helper.make_graph(nodes, "g", [T("x", TensorProto.FLOAT, [4, 3]), T("w", TensorProto.FLOAT, w_shape)],
                              [T("y", TensorProto.FLOAT, [4, 3]), T("z", TensorProto.FLOAT, [4, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.mark.parametrize("extra_is_sequence", [False, True], ids=["tensor-extra", "sequence-extra"])
def test_sequence_map(extra_is_sequence: bool) -> None:
    model = _model(extra_is_sequence)
    feeds = {"x": rand(4, 3), "w": rand(4 if extra_is_sequence else 1, 3, seed=3)}
    expected = run_onnxruntime(model, feeds)
    result = lower(model, target="iOS16", verify=False)
    actual = result.predict(feeds)
    for name, exp in expected.items():
        atol, rtol = tolerance_for(exp.dtype)
        np.testing.assert_allclose(actual[name], exp, atol=atol, rtol=rtol)
    names = [v.name for op in result.program.functions["main"].operations for v in op.outputs]
    assert len(names) == len(set(names)), "unrolled body copies must get unique value names"
