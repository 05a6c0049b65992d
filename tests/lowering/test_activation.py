"""Lowering of activations (Relu ... Shrink, Softmax, LogSoftmax, Hardmax), checked against onnxruntime."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from pipeline.lowering import lower
from pipeline.lowering.stage import mil_op_histogram
from tests.lowering.support import Case, check, check_neural_network, make_model, rand

F16 = np.float16
I64 = np.int64
I32 = np.int32

X = rand(2, 3, 4, low=-4, high=4)
X16 = rand(2, 3, 4, dtype=F16, low=-4, high=4)
# Exact boundary values of ThresholdedRelu (alpha=1) and Shrink (lambd=0.5).
EDGES = np.array([-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5, -2.0], np.float32)

SIMPLE: list[tuple[str, int, dict[str, Any]]] = [
    ("Relu", 6, {}),
    ("Relu", 14, {}),
    ("LeakyRelu", 6, {}),
    ("LeakyRelu", 16, {"alpha": 0.2}),
    ("Elu", 6, {}),
    ("Elu", 6, {"alpha": 0.5}),
    ("Selu", 6, {}),
    ("Selu", 22, {"alpha": 1.5, "gamma": 2.0}),
    ("Celu", 12, {}),
    ("Celu", 12, {"alpha": 0.5}),
    ("Celu", 12, {"alpha": 2.0}),
    ("Gelu", 20, {}),
    ("Gelu", 20, {"approximate": "tanh"}),
    ("HardSigmoid", 6, {}),
    ("HardSigmoid", 22, {"alpha": 0.3, "beta": 0.4}),
    ("HardSwish", 14, {}),
    ("Sigmoid", 6, {}),
    ("Sigmoid", 13, {}),
    ("Softplus", 1, {}),
    ("Softsign", 1, {}),
    ("Tanh", 6, {}),
    ("ThresholdedRelu", 10, {}),
    ("ThresholdedRelu", 22, {"alpha": 0.5}),
    ("Mish", 18, {}),
    ("Shrink", 9, {}),
    ("Shrink", 9, {"lambd": 1.0, "bias": 1.0}),
    ("Shrink", 9, {"lambd": 0.5, "bias": 0.2}),
    ("Shrink", 9, {"lambd": 0.0, "bias": 0.3}),
]


def _id(op: str, opset: int, attrs: dict[str, Any], tag: str) -> str:
    return f"{op}-{opset}-{tag}-" + ",".join(f"{k}={v}" for k, v in attrs.items())


CASES = [
    Case(op, [X], attrs, opset=opset, id=_id(op, opset, attrs, "fp32"))
    for op, opset, attrs in SIMPLE
]
# onnxruntime has no fp16 Celu kernel, so Celu has no fp16 reference.
CASES += [
    Case(op, [X16], attrs, opset=max(opset, 13), id=_id(op, opset, attrs, "fp16"))
    for op, opset, attrs in SIMPLE
    if op != "Celu"
]
CASES += [
    Case("Relu", [rand(2, 3, dtype=I32, low=-5, high=5)], opset=14, id="Relu-int32"),
    Case("ThresholdedRelu", [EDGES], id="ThresholdedRelu-boundary"),
    Case(
        "ThresholdedRelu", [EDGES.astype(F16)], {"alpha": 0.5}, id="ThresholdedRelu-boundary-fp16"
    ),
    Case("Shrink", [EDGES], {"lambd": 0.5}, id="Shrink-hard-boundary"),
    Case("Shrink", [EDGES], {"lambd": 0.5, "bias": 0.5}, id="Shrink-soft-boundary"),
    Case("Shrink", [EDGES], {"lambd": 0.5, "bias": 0.1}, id="Shrink-general-boundary"),
    # PRelu: one slope (leaky_relu), per-channel slope (prelu), other broadcasts (composite).
    Case(
        "PRelu",
        [rand(2, 3, 4, 5), np.array([0.25], np.float32)],
        opset=9,
        const_inputs=(1,),
        id="PRelu-scalar",
    ),
    Case(
        "PRelu",
        [rand(2, 3, 4, 5), rand(3, 1, 1, low=0, high=1)],
        opset=9,
        const_inputs=(1,),
        id="PRelu-channel",
    ),
    Case(
        "PRelu",
        [rand(2, 3, 4), rand(3, 1, low=0, high=1)],
        opset=16,
        const_inputs=(1,),
        id="PRelu-channel-rank3",
    ),
    Case(
        "PRelu",
        [rand(2, 3, 4, 5, dtype=F16), rand(3, 1, 1, dtype=F16, low=0, high=1)],
        opset=16,
        const_inputs=(1,),
        id="PRelu-channel-fp16",
    ),
    Case(
        "PRelu",
        [rand(2, 3, 4), rand(4, low=0, high=1)],
        opset=9,
        const_inputs=(1,),
        id="PRelu-last-axis",
    ),
    Case(
        "PRelu", [rand(2, 3), rand(3, low=0, high=1)], opset=7, const_inputs=(1,), id="PRelu-rank2"
    ),
    Case("PRelu", [rand(2, 3, 4), rand(3, 4, low=0, high=1)], opset=16, id="PRelu-dynamic-slope"),
    Case(
        "PRelu",
        [rand(2, 3, 4, 5), rand(1, 3, 1, 1, low=0, high=1)],
        opset=16,
        const_inputs=(1,),
        id="PRelu-channel-full-rank",
    ),
    # Softmax family: opset < 13 flattens at axis (default 1), >= 13 uses one axis (default -1).
    Case("Softmax", [rand(2, 3, 4)], opset=11, id="Softmax11-default-axis-flatten"),
    Case("Softmax", [rand(2, 3, 4)], {"axis": 2}, opset=11, id="Softmax11-last"),
    Case("Softmax", [rand(2, 3, 4)], {"axis": 0}, opset=1, id="Softmax1-axis0"),
    Case("Softmax", [rand(2, 3, 4)], {"axis": -2}, opset=11, id="Softmax11-neg-axis"),
    Case("Softmax", [rand(3, 5)], opset=11, id="Softmax11-2d"),
    Case("Softmax", [rand(2, 3, 4)], opset=13, id="Softmax13-default"),
    Case("Softmax", [rand(2, 3, 4)], {"axis": 1}, opset=13, id="Softmax13-axis1"),
    Case("Softmax", [rand(2, 3, 4, dtype=F16)], {"axis": -3}, opset=13, id="Softmax13-fp16"),
    Case("Softmax", [rand(2, 3, 4, dtype=F16)], opset=11, id="Softmax11-fp16"),
    Case("LogSoftmax", [rand(2, 3, 4)], opset=11, id="LogSoftmax11-default-axis-flatten"),
    Case("LogSoftmax", [rand(2, 3, 4)], {"axis": 0}, opset=1, id="LogSoftmax1-axis0"),
    Case("LogSoftmax", [rand(2, 3, 4)], opset=13, id="LogSoftmax13-default"),
    Case("LogSoftmax", [rand(2, 3, 4)], {"axis": -2}, opset=13, id="LogSoftmax13-neg-axis"),
    Case("LogSoftmax", [rand(2, 3, 4, dtype=F16)], opset=13, id="LogSoftmax13-fp16"),
    Case(
        "LogSoftmax",
        [np.array([[0.0, -200.0, 50.0, 100.0]], np.float32)],
        opset=13,
        id="LogSoftmax-wide-range",
    ),
    Case("Hardmax", [rand(2, 3, 4)], opset=11, id="Hardmax11-default-axis-flatten"),
    Case("Hardmax", [rand(2, 3, 4)], {"axis": 2}, opset=11, id="Hardmax11-last"),
    Case("Hardmax", [rand(2, 3, 4)], opset=13, id="Hardmax13-default"),
    Case("Hardmax", [rand(2, 3, 4)], {"axis": 1}, opset=13, id="Hardmax13-axis1"),
    Case("Hardmax", [rand(2, 3, 4, dtype=F16)], {"axis": 0}, opset=13, id="Hardmax13-fp16"),
    Case(
        "Hardmax",
        [np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]], np.float32)],
        opset=13,
        id="Hardmax-ties",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_activation(case: Case) -> None:
    check(case)


# Every fifth fp32/int case on the neural-network backend (see test_elementwise).
NN_CASES = [c for c in CASES if all(a is None or a.dtype != F16 for a in c.inputs)][::5]


@pytest.mark.parametrize("case", NN_CASES, ids=str)
def test_activation_neural_network(case: Case) -> None:
    check_neural_network(case)


def torch_fn(name: str) -> Callable[..., Any]:
    """The PyTorch spelling of an ONNX op, for the op-count comparison (torch imported lazily)."""

    def fn(*args: Any) -> Any:
        import torch
        import torch.nn.functional as F

        a = args[0]
        table: dict[str, Callable[[], Any]] = {
            "hardswish": lambda: F.hardswish(a),
            "mish": lambda: F.mish(a),
            "selu": lambda: torch.selu(a),
            "gelu_tanh": lambda: F.gelu(a, approximate="tanh"),
            "log_softmax": lambda: torch.log_softmax(a, -1),
            "hardmax": lambda: F.one_hot(torch.argmax(a, -1), a.shape[-1]).to(a.dtype),
            "thresholded_relu": lambda: torch.where(a > 1.0, a, torch.zeros_like(a)),
            "trunc_div": lambda: torch.div(a, args[1], rounding_mode="trunc"),
            "remainder": lambda: torch.remainder(a, args[1]),
            "mean3": lambda: (a + args[1] + args[2]) / 3,
        }
        return table[name]()

    return fn


def _apple_op_count(fn: Callable[..., Any], inputs: tuple[np.ndarray, ...]) -> int:
    """Non-const MIL ops of ct.convert (coremltools' PyTorch frontend, fp32) for ``fn``."""
    import coremltools as ct
    import torch

    class Wrapper(torch.nn.Module):
        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return fn(*args)

    traced = torch.jit.trace(Wrapper().eval(), tuple(torch.from_numpy(i) for i in inputs))
    mlmodel = ct.convert(
        traced,
        inputs=[ct.TensorType(shape=i.shape, dtype=i.dtype) for i in inputs],
        minimum_deployment_target=ct.target.iOS16,
        compute_precision=ct.precision.FLOAT32,
    )
    return sum(mil_op_histogram(mlmodel._mil_program).values())


XA = rand(2, 3, 4, low=-4, high=4)
NUM = np.array([7, -7, 7, -7, 6, 100], np.int32)
DEN = np.array([2, 2, -2, -2, 3, -7], np.int32)
# (ONNX case, the PyTorch function Apple's frontend converts, its inputs).
LEAN = [
    (Case("HardSwish", [XA], opset=14), torch_fn("hardswish"), (XA,)),
    (Case("Mish", [XA], opset=18), torch_fn("mish"), (XA,)),
    (Case("Selu", [XA]), torch_fn("selu"), (XA,)),
    (Case("Gelu", [XA], {"approximate": "tanh"}, opset=20), torch_fn("gelu_tanh"), (XA,)),
    (Case("LogSoftmax", [XA], opset=13), torch_fn("log_softmax"), (XA,)),
    (Case("Hardmax", [XA], opset=13), torch_fn("hardmax"), (XA,)),
    (Case("ThresholdedRelu", [XA]), torch_fn("thresholded_relu"), (XA,)),
    (Case("Div", [NUM, DEN]), torch_fn("trunc_div"), (NUM, DEN)),
    (Case("Mod", [NUM, DEN]), torch_fn("remainder"), (NUM, DEN)),
    (Case("Mean", [XA, XA, XA], opset=13), torch_fn("mean3"), (XA, XA, XA)),
]


@pytest.mark.parametrize("row", LEAN, ids=lambda r: str(r[0]) if isinstance(r, tuple) else "")
def test_not_more_mil_ops_than_coreml_torch_frontend(
    row: tuple[Case, Callable[..., Any], tuple[np.ndarray, ...]],
) -> None:
    case, fn, inputs = row
    model, _ = make_model(case)
    ours = sum(mil_op_histogram(lower(model, verify=False).program).values())
    assert ours <= _apple_op_count(fn, inputs)
