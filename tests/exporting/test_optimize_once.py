"""onnxscript's optimizer run lean (one round, only rules that can match) gives torch's final graphs."""

from __future__ import annotations

import collections

import pytest

import pipeline
from models import face_seg, transformer_block
from pipeline.exporting import exporters, optimize

MODELS = {"transformer_block": transformer_block, "face_seg": face_seg}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_once_matches_torchs_default(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert exporters.DYNAMO_OPTIMIZE == "once"  # the default under test
    model, args = MODELS[name].build()
    graphs = {}
    for setting in (True, "once"):
        monkeypatch.setattr(exporters, "DYNAMO_OPTIMIZE", setting)
        result = pipeline.export(model, args)
        assert result.exporter_used == "dynamo" and result.ok
        graphs[setting] = collections.Counter(n.op_type for n in result.onnx_model.graph.node)
    assert graphs["once"] == graphs[True]


def test_only_rules_that_can_match_are_kept() -> None:
    """A transformer keeps no Conv/BatchNorm rule; a CNN keeps them; readable patterns only."""
    from onnxscript import rewriter

    rules = rewriter._DEFAULT_REWRITE_RULES
    readable = [r for r in rules if optimize.pattern_ops(r) is not None]
    assert len(readable) >= 40  # the filter sees (nearly) every default rule
    attention = optimize.applicable(rules, {("", "MatMul"), ("", "Softmax"), ("", "Transpose")})
    names = {type(r).__name__ for r in attention} | {getattr(r, "name", "") for r in attention}
    assert "TransposeTranspose" in names and "FuseBatchNormIntoConv" not in names
    cnn = optimize.applicable(rules, {("", "Conv"), ("", "BatchNormalization"), ("", "Relu")})
    assert any(getattr(r, "name", "") == "FuseBatchNormIntoConv" for r in cnn)
    for rule in cnn:
        needed = optimize.pattern_ops(rule)
        assert needed is None or needed <= {("", "Conv"), ("", "BatchNormalization"), ("", "Relu")}


def test_model_op_types_see_functions_and_subgraphs() -> None:
    import onnx_ir as ir
    from onnx import TensorProto, helper

    then = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2])])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                              [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2])])
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other),
         helper.make_node("Twice", ["y"], ["z"], domain="local")], "g",
        [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2])])
    twice = helper.make_function("local", "Twice", ["a"], ["b"],
                                 [helper.make_node("Add", ["a", "a"], ["b"])],
                                 [helper.make_opsetid("", 18)])
    model = helper.make_model(graph, functions=[twice], opset_imports=[
        helper.make_opsetid("", 18), helper.make_opsetid("local", 1)])
    found = optimize.model_op_types(ir.serde.deserialize_model(model))
    assert {("", "If"), ("", "Relu"), ("", "Neg"), ("local", "Twice"), ("", "Add")} <= found
