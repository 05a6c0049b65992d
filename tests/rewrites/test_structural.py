"""remove_identity, fold_constants, cleanup_casts, remove_dead_code (structural passes)."""

from __future__ import annotations

import numpy as np
import torch
from onnx import TensorProto, helper, numpy_helper

from tests.rewrites.support import check_pass, const, export_torch, make_model, op_types, run_one

F = TensorProto.FLOAT


def _expect(ops_wanted: list[str]):  # type: ignore[no-untyped-def]
    def expect(ops: list[str]) -> None:
        assert ops == ops_wanted, ops

    return expect


class DropoutNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)
        self.drop = torch.nn.Dropout(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.drop(self.fc(x)))


def test_identity_and_dropout_removed() -> None:
    nodes = [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Dropout", ["b", "r"], ["c"]), helper.make_node("Neg", ["c"], ["y"])]
    init = [numpy_helper.from_array(np.array(0.5, np.float32), "r")]
    check_pass(make_model(nodes, [("x", F, [2, 3])], ["y"], initializers=init),
               "remove_identity", "structural", expect=_expect(["Relu", "Neg"]))


def test_dropout_with_used_mask_or_training_stays() -> None:
    t = [numpy_helper.from_array(np.array(True), "t")]
    nodes = [helper.make_node("Dropout", ["x", "", "t"], ["y"])]
    after, record = run_one(make_model(nodes, [("x", F, [4])], ["y"], initializers=t),
                            "remove_identity")
    assert op_types(after) == ["Dropout"] and not record.changed


def test_torch_dropout_removed() -> None:
    model = export_torch(DropoutNet(), (torch.randn(2, 8),), opset=17, dynamo=False)
    model.graph.node.insert(0, helper.make_node("Identity", [model.graph.input[0].name], ["xi"]))
    for node in model.graph.node[1:]:
        node.input[:] = ["xi" if i == model.graph.input[0].name else i for i in node.input]
    check_pass(model, "remove_identity", "structural",
               expect=lambda ops: not {"Identity", "Dropout"} & set(ops) or
               (_ for _ in ()).throw(AssertionError(ops)))


def test_fold_shape_chain() -> None:
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i0"], ["g"], axis=0),
             helper.make_node("Unsqueeze", ["g", "ax"], ["u"]),
             helper.make_node("Concat", ["u", "m1"], ["c"], axis=0),
             helper.make_node("Reshape", ["x", "c"], ["y"])]
    init = [numpy_helper.from_array(np.array(v, np.int64), n)
            for n, v in (("i0", 0), ("ax", [0]), ("m1", [-1]))]
    check_pass(make_model(nodes, [("x", F, [2, 3, 4])], ["y"], initializers=init),
               "fold_constants", "structural", expect=_expect(["Reshape"]))


def test_cast_cleanup() -> None:
    nodes = [helper.make_node("Cast", ["x"], ["a"], to=F),          # same type: removed
             helper.make_node("Cast", ["a"], ["b"], to=TensorProto.DOUBLE),
             helper.make_node("Cast", ["b"], ["c"], to=F),          # f32->f64->f32: exact
             helper.make_node("Cast", ["c"], ["d"], to=TensorProto.FLOAT16),
             helper.make_node("Cast", ["d"], ["y"], to=F)]          # f32->f16->f32: rounds, kept
    after = check_pass(make_model(nodes, [("x", F, [5])], ["y"]), "cleanup_casts", "structural",
                       expect=_expect(["Cast", "Cast"]))
    assert [n.attribute[0].i for n in after.graph.node] == [TensorProto.FLOAT16, F]


def test_cast_torch_same_type() -> None:
    class Casts(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.to(torch.float32).to(torch.float64).to(torch.float32) + 1

    model = export_torch(Casts(), (torch.randn(3),), opset=17)
    check_pass(model, "cleanup_casts", "structural",
               expect=lambda ops: "Cast" not in ops or (_ for _ in ()).throw(AssertionError(ops)))


def test_dead_code_removed() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["dead"]),
             const("unused", 3.0)]
    init = [numpy_helper.from_array(np.ones(4, np.float32), "w")]
    after = check_pass(make_model(nodes, [("x", F, [4])], ["y"], initializers=init),
                       "remove_dead_code", "structural", expect=_expect(["Relu"]))
    assert not after.graph.initializer
