"""pipeline.export end to end: report, intermediates, dynamic dims, parity failures, bisect."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
import torch

import pipeline
from pipeline.errors import ExportError, ParityError, RewriteError
from pipeline.exporting import validate
from tests.exporting.support import SignBranch, tiny, tol


def test_export_writes_model_and_report(tmp_path: Path) -> None:
    module, args = tiny()
    out, rep = tmp_path / "m.onnx", tmp_path / "r.json"
    stages: list[str] = []
    result = pipeline.export(module, args, out, report_path=rep, progress=stages.append, **tol())
    assert result.path == out and out.is_file() and result.ok
    assert result.exporter_used == "dynamo" and result.opset == 18
    assert stages == list(pipeline.api.EXPORT_STAGES)
    loaded = onnx.load(out)
    got = validate.run_ort(loaded, {"x": args[0].numpy()})
    with torch.no_grad():
        want = [t.numpy() for t in module(*args)]
    for g, w in zip(got.values(), want, strict=True):
        np.testing.assert_allclose(g, w, **tol())
    data = json.loads(rep.read_text())
    assert [s["name"] for s in data["stages"]] == list(pipeline.api.EXPORT_STAGES)
    assert all(s["seconds"] >= 0 for s in data["stages"])
    assert data["exporter"]["used"] == "dynamo" and data["exporter"]["fallback_reason"] == ""
    assert data["graphs"]["exported"]["ops"]["Relu"] == 1
    assert data["graphs"]["final"]["nodes"] == len(loaded.graph.node)
    assert data["parity"]["ok"] and len(data["parity"]["outputs"]) == 2
    assert isinstance(data["rewrites"], list) and "symbolics" in data


def test_intermediates_numbered_with_source_lines(tmp_path: Path) -> None:
    module, args = tiny()
    result = pipeline.export(module, args, keep_intermediates=tmp_path / "steps")
    names = [p.name for p in result.intermediates]
    assert names[0] == "00_exported.onnx" and names[-2:] == ["02_rewritten.onnx", "03_simplified.onnx"]
    assert names == sorted(names)
    for path in result.intermediates:
        model = onnx.load(path)
        relu = [n for n in model.graph.node if n.op_type == "Relu"]
        assert relu and relu[0].doc_string.startswith("tests/exporting/support.py:"), path
    assert result.path is None


def test_dynamic_batch_runs_other_sizes() -> None:
    module, args = tiny()
    result = pipeline.export(module, args, dynamic={"x": {0: "batch"}})
    dim = result.onnx_model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "batch"
    x5 = torch.randn(5, 4, generator=torch.Generator().manual_seed(9))
    got = validate.run_ort(result.onnx_model, {"x": x5.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(next(iter(got.values())), module(x5)[0].numpy(), **tol())


def test_specialized_dynamic_axis_is_an_error() -> None:
    """Model code that fixes the 'dynamic' size: the exporter specializes it, we say so."""

    class FixedBatch(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(2, 2, 2) * 2

    with pytest.raises(ExportError, match="specialized|conflicts between user-specified ranges"):
        pipeline.export(FixedBatch(), (torch.randn(2, 4),), dynamic={"x": {0: "batch"}},
                        fallback=False)


def test_parity_failure_names_output_and_writes_nothing(tmp_path: Path) -> None:
    """The traced branch of SignBranch is wrong for inputs of the other sign: parity catches it."""
    x_pos = torch.full((2, 3), 0.5)
    x_neg = torch.full((2, 3), -0.5) + torch.arange(6.0).reshape(2, 3) * 0.01
    out, rep = tmp_path / "m.onnx", tmp_path / "r.json"
    with pytest.raises(ParityError) as info:
        pipeline.export(SignBranch(), (x_pos,), out, exporter="torchscript", parity_inputs=(x_neg,),
                        report_path=rep)
    assert "output" in str(info.value) and "\n" not in str(info.value)
    assert not out.exists() and list(tmp_path.iterdir()) == [rep]
    data = json.loads(rep.read_text())
    assert data["error"]["type"] == "ParityError" and data["parity"]["ok"] is False


@pytest.fixture()
def breaking_pass() -> Iterator[str]:
    import rewrites
    from rewrites.manager import PASSES

    name = "test_turn_relu_into_sigmoid"

    @rewrites.register_pass(name, "test only: changes the math on purpose", default=True)
    def _break(model: ir.Model) -> bool:
        changed = False
        for node in model.graph:
            if node.op_type == "Relu":
                node.op_type = "Sigmoid"
                changed = True
        return changed

    yield name
    PASSES.remove(name)


def test_bisect_names_the_breaking_pass(breaking_pass: str, tmp_path: Path) -> None:
    module, args = tiny()
    with pytest.raises(RewriteError) as info:
        pipeline.export(module, args, bisect_rewrites=True, report_path=tmp_path / "r.json")
    assert breaking_pass in str(info.value)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["bisect"][0] == {"after": "export", "ok": True, "max_abs": data["bisect"][0]["max_abs"]}
    assert data["bisect"][-1]["after"] == breaking_pass and not data["bisect"][-1]["ok"]
    # Without bisect the final parity still fails; disabling the pass fixes the export.
    with pytest.raises(ParityError):
        pipeline.export(module, args)
    assert pipeline.export(module, args, disable_rewrites=[breaking_pass]).ok


def test_model_raising_on_inputs_is_export_error() -> None:
    module, _ = tiny()
    with pytest.raises(ExportError, match="raised RuntimeError"):
        pipeline.export(module, (torch.randn(2, 7),))
