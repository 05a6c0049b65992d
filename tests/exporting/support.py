"""Shared helpers of the stage-one tests: the tolerance table and tiny models."""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper
from torch import nn

#: Parity tolerance per dtype for ONNX Runtime vs PyTorch (the issue's bar: 1e-5 abs for float32).
TOLERANCES: dict[np.dtype, dict[str, float]] = {
    np.dtype(np.float32): {"atol": 1e-5, "rtol": 1e-4},
    np.dtype(np.float16): {"atol": 1e-3, "rtol": 1e-3},
}


def tol(dtype: np.dtype | str = "float32") -> dict[str, float]:
    """atol/rtol for a dtype."""
    return TOLERANCES[np.dtype(dtype)]


def relu_neg_model() -> onnx.ModelProto:
    """ONNX x -> Relu -> h -> Neg -> y on float [2, 3], opset 18 (h: one inferred value_info)."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["h"], name="relu"),
         helper.make_node("Neg", ["h"], ["y"], name="neg")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


class Tiny(nn.Module):
    """y = relu(linear(x)) * 2 ; a second output z = x.sum(-1)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.relu(self.fc(x)) * 2  # SOURCE-LINE-TINY
        return y, x.sum(-1)


class SignBranch(nn.Module):
    """Data-dependent branch: 2x when sum(x) > 0 else -3x.  TorchScript tracing freezes the
    branch taken by the example input (a genuine export bug parity must catch)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.sum() > 0):
            return x * 2
        return x * -3


def tiny() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """A factory in the ``(module, inputs)`` form."""
    torch.manual_seed(0)
    return Tiny().eval(), (torch.randn(2, 4, generator=torch.Generator().manual_seed(1)),)


def tiny_module_only() -> nn.Module:
    """A factory returning a module only (``--input`` required)."""
    torch.manual_seed(0)
    return Tiny().eval()


def raising_factory() -> nn.Module:
    """A factory that fails."""
    raise RuntimeError("factory exploded on purpose")


def not_a_module() -> int:
    """A factory returning the wrong type."""
    return 42


def positive(shape: tuple[int, ...]) -> torch.Tensor:
    """Seeded strictly positive tensor."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(3)) + 0.5
