"""Case tables for lowering tests: one-node ONNX models, onnxruntime as the expected side,
``pipeline.lowering.lower`` + our executor as the actual side."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper

from pipeline.lowering import lower
from pipeline.lowering.reference import run_onnxruntime
from pipeline.parity import compare

#: (atol, rtol) per dtype of the compared outputs.  fp32 programs are run at fp32; the residual
#: comes from reordered sums and transcendental implementations (numpy vs MLAS).
TOLERANCE = {
    "float32": (1e-5, 1e-4),
    "float16": (2e-3, 2e-3),  # fp16 unit roundoff 2**-11 ~ 4.9e-4, a few ops deep
    "int": (0, 0),
    "bool": (0, 0),
}


def tolerance_for(dtype: np.dtype) -> tuple[float, float]:
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return TOLERANCE["float16" if dtype == np.float16 else "float32"]
    return TOLERANCE["bool" if dtype.kind == "b" else "int"]


def rand(*shape: int, dtype: Any = np.float32, low: float = -2.0, high: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed + sum(shape))
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.uniform(low, high, size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) > 0.5
    return rng.integers(int(low), int(high) + 1, size=shape).astype(dtype)


@dataclasses.dataclass
class Case:
    """One node test: op, input arrays (None = omitted optional input), attributes, opset.

    ``const_inputs`` are indices of inputs passed as initializers (shapes, axes, ...), the rest
    are graph inputs fed at run time.
    """

    op: str
    inputs: Sequence[np.ndarray | None]
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    opset: int = 17
    const_inputs: Sequence[int] = ()
    n_outputs: int = 1
    domain: str = ""
    target: str = "iOS16"
    precision: str = "fp32"
    atol: float | None = None
    rtol: float | None = None
    id: str = ""

    def __str__(self) -> str:
        return self.id or f"{self.op}-opset{self.opset}-" + "x".join(
            str(a.shape) if a is not None else "none" for a in self.inputs
        )


def make_model(case: Case) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """A checked one-node ONNX model for ``case`` and its feeds; output types come from ORT."""
    names, graph_inputs, inits, feeds = [], [], [], {}
    for i, arr in enumerate(case.inputs):
        if arr is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        arr = np.asarray(arr)
        if i in case.const_inputs:
            inits.append(onnx.numpy_helper.from_array(arr, name))
        else:
            elem = helper.np_dtype_to_tensor_dtype(arr.dtype)
            graph_inputs.append(helper.make_tensor_value_info(name, elem, list(arr.shape)))
            feeds[name] = arr
    outs = [f"out{i}" for i in range(case.n_outputs)]
    node = helper.make_node(case.op, names, outs, name=f"{case.op}_node", domain=case.domain, **case.attrs)
    opsets = [helper.make_opsetid("", case.opset)]
    if case.domain:
        opsets.append(helper.make_opsetid(case.domain, 1))
    # Infer output types by running onnxruntime on a model with untyped outputs first.
    probe_outputs = [helper.make_empty_tensor_value_info(o) for o in outs]
    probe = helper.make_model(helper.make_graph([node], "case", graph_inputs, probe_outputs, inits), opset_imports=opsets)
    probe.ir_version = min(probe.ir_version, 10)
    results = run_onnxruntime(probe, feeds)
    typed = [
        helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(results[o].dtype), list(results[o].shape))
        for o in outs
    ]
    model = helper.make_model(helper.make_graph([node], "case", graph_inputs, typed, inits), opset_imports=opsets)
    model.ir_version = probe.ir_version
    onnx.checker.check_model(model, full_check=True)
    return model, feeds


def check(case: Case) -> None:
    """Assert that lowering + our executor reproduces onnxruntime on ``case``."""
    model, feeds = make_model(case)
    expected = run_onnxruntime(model, feeds)
    result = lower(model, target=case.target, precision=case.precision, verify=False)
    actual = result.predict(feeds)
    for name, exp in expected.items():
        atol, rtol = tolerance_for(exp.dtype)
        if case.precision == "fp16":
            atol, rtol = TOLERANCE["float16"]
        atol = case.atol if case.atol is not None else atol
        rtol = case.rtol if case.rtol is not None else rtol
        assert actual[name].dtype == exp.dtype, f"{case}: dtype {actual[name].dtype} != {exp.dtype}"
        report = compare({name: actual[name]}, {name: exp}, atol=atol, rtol=rtol)
        assert report.ok, f"{case}:\n{report.summary()}"


def check_neural_network(case: Case) -> None:
    """Lower ``case`` for the neural-network backend (iOS14); ``verify`` compares with onnxruntime."""
    model, feeds = make_model(case)
    result = lower(model, target="iOS14", backend="neuralnetwork", verify=True, feeds=feeds)
    assert result.parity is not None and result.parity.ok
