"""fuse_gelu: written-out GELU (erf, tanh) -> Gelu-20; left alone below opset 20."""

from __future__ import annotations

import math

import pytest
import torch
from onnx import TensorProto, helper

from tests.rewrites.support import check_pass, const, export_torch, make_model, op_types, run_one

F = TensorProto.FLOAT


def _only_gelu(ops: list[str]) -> None:
    assert ops.count("Gelu") == 1
    assert not {"Erf", "Tanh", "Pow"} & set(ops)


class ErfGelu(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


class TanhGelu(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = math.sqrt(2 / math.pi)
        return 0.5 * x * (1 + torch.tanh(k * (x + 0.044715 * torch.pow(x, 3))))


class TanhGeluProduct(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.5 * (1.0 + torch.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))


class TwoGelus(torch.nn.Module):
    """The TorchScript exporter shares one `0.5 * x` between both (CSE)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ErfGelu()(x) + TanhGelu()(x)


def test_erf_form_helper_model() -> None:
    # x * (1/sqrt2) spelled as Mul, factors associated as x * ((1 + erf) * 0.5).
    nodes = [
        const("r", 1 / math.sqrt(2)), const("one", 1.0), const("half", 0.5),
        helper.make_node("Mul", ["x", "r"], ["s"]), helper.make_node("Erf", ["s"], ["e"]),
        helper.make_node("Add", ["one", "e"], ["p"]), helper.make_node("Mul", ["p", "half"], ["h"]),
        helper.make_node("Mul", ["x", "h"], ["y"]),
    ]
    after = check_pass(make_model(nodes, [("x", F, [3, 5])], ["y"]), "fuse_gelu", "fusion",
                       expect=_only_gelu)
    gelu = next(n for n in after.graph.node if n.op_type == "Gelu")
    assert helper.get_attribute_value(gelu.attribute[0]) == b"none"


@pytest.mark.parametrize("dynamo", [False, True])
@pytest.mark.parametrize("module", [ErfGelu, TanhGelu, TanhGeluProduct])
def test_torch_exports(module: type[torch.nn.Module], dynamo: bool) -> None:
    model = export_torch(module(), (torch.randn(4, 16),), opset=20, dynamo=dynamo)
    prep = ["fold_constants"] if dynamo else []  # dynamo spells 1.0 as Cast(Constant(1))
    after = check_pass(model, "fuse_gelu", "fusion", expect=_only_gelu, prep=prep)
    gelu = next(n for n in after.graph.node if n.op_type == "Gelu")
    want = b"none" if module is ErfGelu else b"tanh"
    assert helper.get_attribute_value(gelu.attribute[0]) == want


def test_shared_half_x_is_fused_twice() -> None:
    model = export_torch(TwoGelus(), (torch.randn(4, 16),), opset=20)
    check_pass(model, "fuse_gelu", "fusion",
               expect=lambda ops: (ops.count("Gelu") == 2 or pytest.fail(str(ops))))


def test_wrong_constant_is_not_fused() -> None:
    # 0.5 * x * (1 + erf(x / 1.5)) is not GELU.
    nodes = [
        const("c", 1.5), const("one", 1.0), const("half", 0.5),
        helper.make_node("Div", ["x", "c"], ["s"]), helper.make_node("Erf", ["s"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["p"]), helper.make_node("Mul", ["x", "half"], ["h"]),
        helper.make_node("Mul", ["h", "p"], ["y"]),
    ]
    after, record = run_one(make_model(nodes, [("x", F, [3])], ["y"]), "fuse_gelu")
    assert "Gelu" not in op_types(after) and not record.changed


def test_opset_below_20_left_alone() -> None:
    model = export_torch(ErfGelu(), (torch.randn(2, 8),), opset=18)
    after, record = run_one(model, "fuse_gelu")
    assert not record.changed and "Erf" in op_types(after)
