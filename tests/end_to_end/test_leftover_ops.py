"""Issue 5 end to end: four leftover-op cases from PyTorch to a verified Core ML model.

Each case runs :func:`pipeline.convert`: export (parity vs PyTorch in onnxruntime), lower
(parity of our executor vs onnxruntime), and end-to-end parity of the Core ML program vs PyTorch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import pipeline
from models import custom_activation, maximum, mobilenet_block, topk

EXTENSION = str(Path(__file__).resolve().parents[2] / "models" / "extensions" / "sigmoid_tanh.py")


def _kinds(result: pipeline.api.ConvertResult) -> list[tuple[str, str, list[str]]]:
    return [(n["op_type"], n["kind"], n["mil_ops"]) for n in result.lowered.report["nodes"]]


def _verified(result: pipeline.api.ConvertResult) -> None:
    assert result.export.parity is not None and result.export.parity.ok
    assert result.lowered.parity is not None and result.lowered.parity.ok
    assert result.parity is not None and result.parity.ok, result.parity.summary()


def test_maximum_native_and_composite_agree() -> None:
    model, examples = maximum.build()
    native = pipeline.convert(model, examples)
    composite = pipeline.convert(model, examples, lower_composites=["Max"])
    _verified(native)
    _verified(composite)
    assert _kinds(native) == [("Max", "native", ["maximum"])]
    assert _kinds(composite) == [("Max", "composite", ["sub", "relu", "add"])]
    feeds = {n: t.numpy() for n, t in zip(native.export.input_names, examples)}
    a, b = native.lowered.predict(feeds), composite.lowered.predict(feeds)
    expected = torch.maximum(*examples).numpy()
    for out in (a, b):
        np.testing.assert_allclose(next(iter(out.values())), expected, atol=1e-6, rtol=0)


SYMBOLICS = ["aten::relu6", "aten::hardtanh"]


def test_mobilenet_block_through_custom_domain() -> None:
    model, examples = mobilenet_block.build()
    result = pipeline.convert(model, examples, export_symbolics=SYMBOLICS)
    _verified(result)
    hard = [k for k in _kinds(result) if k[0] == "HardTanh"]
    assert [mil for _, _, mil in hard] == [["relu6"], ["relu6"], ["clip"]]
    assert {kind for _, kind, _ in hard} == {"composite"}


def test_mobilenet_block_with_custom_layers(tmp_path: Path) -> None:
    model, examples = mobilenet_block.build()
    result = pipeline.convert(
        model, examples, tmp_path / "block.mlmodel", export_symbolics=SYMBOLICS,
        lower_backend="neuralnetwork", lower_custom_layers=["HardTanh"],
    )
    _verified(result)
    hard = [k for k in _kinds(result) if k[0] == "HardTanh"]
    assert len(hard) == 3 and all(kind == "custom_layer" and len(mil) == 1 for _, kind, mil in hard)
    classes = {l.custom.className for l in result.mlmodel.get_spec().neuralNetwork.layers if l.HasField("custom")}
    assert classes == {"PipelineCustomHardTanhLayer"}
    swift = (tmp_path / "block_custom_layers" / "PipelineCustomHardTanhLayer.swift").read_text()
    assert 'parameters["min_val"] as? Double' in swift and "func encode(commandBuffer" in swift


def test_custom_activation_user_symbolic_and_composite() -> None:
    model, examples = custom_activation.build_custom_op()
    result = pipeline.convert(model, examples, extensions=[EXTENSION])
    _verified(result)
    assert any(n.op_type == "SigmoidTanh" and n.domain == "example.activations"
               for n in result.export.onnx_model.graph.node)
    assert ("SigmoidTanh", "composite", ["sigmoid", "tanh", "mul"]) in _kinds(result)


def test_topk_as_custom_layer(tmp_path: Path) -> None:
    model, examples = topk.build()
    result = pipeline.convert(
        model, examples, tmp_path / "topk.mlmodel",
        lower_backend="neuralnetwork", lower_custom_layers=["TopK"],
    )
    _verified(result)
    (layer,) = [l for l in result.mlmodel.get_spec().neuralNetwork.layers if l.HasField("custom")]
    assert layer.custom.className == "TopKLayer"
    assert {"k", "axis", "sorted"} <= set(layer.custom.parameters)
    assert layer.custom.parameters["k"].intValue == model.k
    assert (tmp_path / "topk_custom_layers" / "TopKLayer.swift").is_file()


@pytest.mark.parametrize("backend", ["mlprogram"])
def test_custom_layers_refused_for_ml_program(backend: str) -> None:
    model, examples = topk.build()
    with pytest.raises(pipeline.LoweringError, match="neural-network"):
        pipeline.convert(model, examples, lower_backend=backend, lower_custom_layers=["TopK"])
