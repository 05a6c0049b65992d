"""Both exporters, default opsets, fallback and its record, failures."""

from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest
import torch

from pipeline.errors import ExportError
from pipeline.exporting import exporters, validate
from tests.exporting.support import tiny, tol


def _opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


@pytest.mark.parametrize("which", exporters.EXPORTERS)
def test_export_and_default_opset(which: str) -> None:
    module, args = tiny()
    out = exporters.export_model(module, args, exporter=which, input_names=["x"], fallback=False)
    assert out.exporter == which and out.fallback_reason == ""
    assert _opset(out.model) == exporters.DEFAULT_OPSET[which] == out.opset
    assert [i.name for i in out.model.graph.input] == ["x"]
    onnx.checker.check_model(out.model, full_check=True)
    got = validate.run_ort(out.model, {"x": args[0].numpy()})
    with torch.no_grad():
        want = [t.numpy() for t in module(*args)]
    for g, w in zip(got.values(), want, strict=True):
        np.testing.assert_allclose(g, w, **tol())


def test_torchscript_dynamic_axes_named() -> None:
    module, args = tiny()
    out = exporters.export_model(module, args, exporter="torchscript", input_names=["x"],
                                 dynamic={"x": {0: "batch"}})
    assert out.model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_fallback_is_recorded_and_warned(monkeypatch, caplog) -> None:
    def broken(*_a, **_k):
        raise RuntimeError("simulated torch.export failure\nsecond line")

    monkeypatch.setattr(exporters, "_run_dynamo", broken)
    module, args = tiny()
    with caplog.at_level(logging.WARNING, logger="pipeline.exporting.exporters"):
        out = exporters.export_model(module, args, exporter="dynamo", input_names=["x"])
    assert out.exporter == "torchscript" and out.requested == "dynamo"
    assert "simulated torch.export failure" in out.fallback_reason
    assert out.opset == exporters.DEFAULT_OPSET["torchscript"]
    assert any("falling back" in r.message for r in caplog.records)


def test_no_fallback_raises_one_line(monkeypatch) -> None:
    monkeypatch.setattr(exporters, "_run_dynamo", lambda *a, **k: (_ for _ in ()).throw(ValueError("boom\nmore")))
    module, args = tiny()
    with pytest.raises(ExportError) as info:
        exporters.export_model(module, args, exporter="dynamo", input_names=["x"], fallback=False)
    assert "dynamo: ValueError: boom" in str(info.value) and "\n" not in str(info.value)


def test_real_untraceable_model_falls_back() -> None:
    """Python values read out of a tensor: torch.export cannot trace them, the TorchScript
    tracer records them as constants."""

    class ToList(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.tensor([min(x.flatten().tolist())])

    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    out = exporters.export_model(ToList(), (x,), input_names=["x"])
    assert out.exporter == "torchscript" and out.fallback_reason.startswith("dynamo:")


def test_both_fail_names_both() -> None:
    class Bad(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ValueError("forward is broken")

    with pytest.raises(ExportError) as info:
        exporters.export_model(Bad(), (torch.zeros(2),), input_names=["x"])
    text = str(info.value)
    assert "dynamo:" in text and "torchscript:" in text and "\n" not in text


def test_unknown_exporter() -> None:
    with pytest.raises(ExportError, match="unknown exporter"):
        exporters.export_model(torch.nn.ReLU(), (torch.zeros(2),), exporter="magic", input_names=["x"])


def test_stdout_is_silenced(capfd) -> None:
    module, args = tiny()
    exporters.export_model(module, args, exporter="torchscript", input_names=["x"])
    exporters.export_model(module, args, exporter="dynamo", input_names=["x"])
    assert capfd.readouterr().out == ""
