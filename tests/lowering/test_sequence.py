"""Lowering of the sequence ops (sequences built and consumed inside the graph) against onnxruntime."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import helper

from pipeline.errors import LoweringError
from pipeline.lowering import lower
from pipeline.lowering.reference import run_onnxruntime
from pipeline.parity import compare
from tests.lowering.support import rand, tolerance_for

I64 = np.int64
F16 = np.float16
N = helper.make_node


@dataclasses.dataclass
class Chain:
    """A small graph: ``feeds`` are graph inputs, ``consts`` initializers, ``outputs`` tensors."""

    id: str
    nodes: list[onnx.NodeProto]
    feeds: dict[str, np.ndarray]
    outputs: list[str]
    consts: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    opset: int = 17

    def __str__(self) -> str:
        return self.id


def build(case: Chain) -> onnx.ModelProto:
    inputs = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
              for k, v in case.feeds.items()]
    inits = [onnx.numpy_helper.from_array(np.asarray(v), k) for k, v in case.consts.items()]
    opsets = [helper.make_opsetid("", case.opset)]
    probe = helper.make_model(helper.make_graph(case.nodes, "seq", inputs,
                                                [helper.make_empty_tensor_value_info(o) for o in case.outputs], inits),
                              opset_imports=opsets)
    probe.ir_version = 10
    res = run_onnxruntime(probe, case.feeds)
    outs = [helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(res[o].dtype), list(res[o].shape))
            for o in case.outputs]
    model = helper.make_model(helper.make_graph(case.nodes, "seq", inputs, outs, inits), opset_imports=opsets)
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    return model


def check_chain(case: Chain) -> None:
    model = build(case)
    expected = run_onnxruntime(model, case.feeds)
    actual = lower(model, verify=False).predict(case.feeds)
    for name, exp in expected.items():
        atol, rtol = tolerance_for(exp.dtype)
        assert actual[name].dtype == exp.dtype and actual[name].shape == exp.shape, (name, actual[name].shape, exp.shape)
        report = compare({name: actual[name]}, {name: exp}, atol=atol, rtol=rtol)
        assert report.ok, f"{case}:\n{report.summary()}"


ABC = {"a": rand(2, 3), "b": rand(2, 3, seed=1), "c": rand(2, 3, seed=2)}
CONSTRUCT = N("SequenceConstruct", ["a", "b", "c"], ["s"])

CASES = [
    Chain("construct-at-concat", [CONSTRUCT, N("SequenceAt", ["s", "p"], ["y0"]),
                                  N("ConcatFromSequence", ["s"], ["y1"], axis=1)],
          ABC, ["y0", "y1"], {"p": np.array(-2, I64)}, opset=11),
    Chain("at-runtime-position", [CONSTRUCT, N("SequenceAt", ["s", "p"], ["y"])],
          dict(ABC, p=np.array(-1, I64)), ["y"]),
    Chain("at-runtime-position-int32", [CONSTRUCT, N("SequenceAt", ["s", "p"], ["y"])],
          dict(ABC, p=np.array(1, np.int32)), ["y"]),
    Chain("stack-new-axis-negative", [CONSTRUCT, N("ConcatFromSequence", ["s"], ["y"], axis=-1, new_axis=1)],
          ABC, ["y"]),
    Chain("empty-insert-length", [N("SequenceEmpty", [], ["e"], dtype=onnx.TensorProto.FLOAT),
                                  N("SequenceInsert", ["e", "a"], ["s1"]),
                                  N("SequenceInsert", ["s1", "b", "p0"], ["s2"]),
                                  N("SequenceLength", ["s2"], ["n"]),
                                  N("ConcatFromSequence", ["s2"], ["y"], axis=0)],
          {"a": rand(2, 3), "b": rand(1, 3, seed=4)}, ["n", "y"], {"p0": np.array(0, I64)}),
    Chain("erase-default-and-position", [CONSTRUCT, N("SequenceErase", ["s"], ["s1"]),
                                         N("SequenceErase", ["s1", "p"], ["s2"]),
                                         N("SequenceAt", ["s2", "z"], ["y"])],
          ABC, ["y"], {"p": np.array(0, I64), "z": np.array(0, I64)}),
    Chain("split-default-keepdims0", [N("SplitToSequence", ["x"], ["s"], axis=1, keepdims=0),
                                      N("ConcatFromSequence", ["s"], ["y"], axis=0, new_axis=1)],
          {"x": rand(2, 4)}, ["y"]),
    Chain("split-default-keepdims1", [N("SplitToSequence", ["x"], ["s"], axis=-1),
                                      N("SequenceAt", ["s", "p"], ["y"])],
          {"x": rand(2, 3, dtype=F16)}, ["y"], {"p": np.array(2, I64)}),
    Chain("split-scalar-chunks", [N("SplitToSequence", ["x", "k"], ["s"], axis=0),
                                  N("SequenceLength", ["s"], ["n"]), N("SequenceAt", ["s", "p"], ["y"])],
          {"x": rand(5, 2)}, ["n", "y"], {"k": np.array(2, I64), "p": np.array(-1, I64)}),
    Chain("split-sizes-int64", [N("SplitToSequence", ["x", "sz"], ["s"], axis=1),
                                N("ConcatFromSequence", ["s"], ["y"], axis=1)],
          {"x": rand(2, 5, dtype=I64, low=-9, high=9)}, ["y"], {"sz": np.array([2, 3], I64)}),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_sequence(case: Chain) -> None:
    check_chain(case)


def test_sequences_cost_no_list_ops() -> None:
    ops = lower(build(CASES[0]), verify=False).report["mil_ops"]
    assert not any(k.startswith("list_") or k == "make_list" for k in ops) and ops.get("concat") == 1


def test_runtime_insert_position_is_explained() -> None:
    case = Chain("insert-dyn", [CONSTRUCT, N("SequenceInsert", ["s", "a", "p"], ["s2"]),
                                N("ConcatFromSequence", ["s2"], ["y"], axis=0)], dict(ABC, p=np.array(1, I64)), ["y"])
    with pytest.raises(LoweringError, match="insert position is computed at run time"):
        lower(build(case), verify=False)


def test_sequence_graph_output_is_explained() -> None:
    """Regression (onnx node tests test_split_to_sequence_*): a sequence-typed graph output used to
    crash the I/O adapter with an AttributeError; Core ML outputs are tensors, so it is refused."""
    from pipeline.errors import UnsupportedTypeError

    seq_out = helper.make_tensor_sequence_value_info("s", onnx.TensorProto.FLOAT, None)
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 4])
    model = helper.make_model(helper.make_graph([N("SplitToSequence", ["x"], ["s"], axis=1, keepdims=0)], "seq",
                                                [x], [seq_out]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    with pytest.raises(UnsupportedTypeError, match="output 's' is a sequence"):
        lower(model, verify=False)
