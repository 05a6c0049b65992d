"""``python -m pipeline.export``: main(argv) paths, one-line errors, one subprocess smoke."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from pipeline.cli.export import main, parse_rewrites
from pipeline.errors import InputSpecError
from pipeline.exporting import validate
from tests.exporting.support import tiny, tol

ROOT = Path(__file__).resolve().parents[2]
FACTORY = "tests.exporting.support:tiny"


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith(("error:", "python -m pipeline.export: error:")), err
    return lines[0]


def test_factory_export_with_report(tmp_path: Path, capsys) -> None:
    out, rep = tmp_path / "t.onnx", tmp_path / "r.json"
    assert main([FACTORY, "--out", str(out), "--report", str(rep), "--dynamic", "x:0=batch"]) == 0
    assert "wrote" in capsys.readouterr().out
    model = onnx.load(out)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert json.loads(rep.read_text())["parity"]["ok"] is True


def test_module_only_factory_needs_input(tmp_path: Path, capsys) -> None:
    spec = "tests.exporting.support:tiny_module_only"
    assert main([spec, "--out", str(tmp_path / "a.onnx")]) == 2
    assert "--input" in _one_line_error(capsys)
    assert main([spec, "--input", "x:3x4:float32", "--out", str(tmp_path / "a.onnx"), "-q"]) == 0
    assert onnx.load(tmp_path / "a.onnx").graph.input[0].type.tensor_type.shape.dim[0].dim_value == 3


def test_npz_inputs_used_for_parity(tmp_path: Path) -> None:
    module, _ = tiny()
    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    np.savez(tmp_path / "in.npz", x=x)
    out = tmp_path / "n.onnx"
    assert main([FACTORY, "--input", "x:3x4", "--inputs-npz", str(tmp_path / "in.npz"),
                 "--out", str(out), "-q", "--report", str(tmp_path / "r.json")]) == 0
    got = validate.run_ort(onnx.load(out), {"x": x})
    with torch.no_grad():
        np.testing.assert_allclose(next(iter(got.values())), module(torch.from_numpy(x))[0].numpy(), **tol())


def test_checkpoint_with_factory(tmp_path: Path) -> None:
    module, (x,) = tiny()
    with torch.no_grad():
        module.fc.bias.fill_(3.0)
    torch.save(module.state_dict(), tmp_path / "w.pth")
    out = tmp_path / "c.onnx"
    assert main([str(tmp_path / "w.pth"), "--factory", FACTORY, "--out", str(out), "-q"]) == 0
    got = validate.run_ort(onnx.load(out), {"x": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(next(iter(got.values())), module(x)[0].numpy(), **tol())


def test_torchscript_exporter_and_intermediates(tmp_path: Path) -> None:
    steps = tmp_path / "steps"
    assert main([FACTORY, "--exporter", "torchscript", "--opset", "17", "--no-simplify",
                 "--keep-intermediates", str(steps), "--out", str(tmp_path / "t.onnx"), "-q"]) == 0
    files = sorted(p.name for p in steps.iterdir())
    assert files[0] == "00_exported.onnx" and "03_simplified.onnx" in files
    opset = next(o.version for o in onnx.load(tmp_path / "t.onnx").opset_import if o.domain == "")
    assert opset == 17


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["no_such_module_abc:build"], "cannot import"),
        (["tests.exporting.support:raising_factory"], "factory raised"),
        (["not-a-spec"], "not a file and not module:factory"),
        ([FACTORY, "--input", "x:1xfoo"], "--input"),
        ([FACTORY, "--input", "x:2x4:complex99"], "unknown dtype"),
        ([FACTORY, "--dynamic", "x:batch"], "--dynamic"),
        ([FACTORY, "--dynamic", "y:0=b"], "no input called"),
        ([FACTORY, "--inputs-npz", "/nonexistent/in.npz"], "--inputs-npz"),
        ([FACTORY, "--rewrites", "no_such_pass"], "no_such_pass"),
        ([FACTORY, "--input", "x:2x5"], "raised RuntimeError"),
        (["tests.exporting.support:tiny_module_only", "--input", "x:2x4", "--opset", "99",
          "--exporter", "torchscript"], "torchscript"),
        ([], "no SOURCE"),
        ([FACTORY, "--exporter", "nope"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line(argv: list[str], needle: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "never.onnx"
    code = main(argv + ["--out", str(out)] if argv else argv)
    assert code != 0
    assert needle in _one_line_error(capsys)
    assert not out.exists()


def test_corrupt_checkpoint_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x00" * 32)
    assert main([str(bad), "--factory", FACTORY, "--out", str(tmp_path / "x.onnx")]) == 2
    assert "checkpoint" in _one_line_error(capsys)
    assert not (tmp_path / "x.onnx").exists()


def test_debug_shows_traceback(capsys) -> None:
    assert main(["tests.exporting.support:raising_factory", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_parse_rewrites() -> None:
    assert parse_rewrites(None) == (True, None, [])
    assert parse_rewrites("none") == (False, None, [])
    assert parse_rewrites("a,b") == (True, ["a", "b"], [])
    assert parse_rewrites("-a,-b") == (True, None, ["a", "b"])
    with pytest.raises(InputSpecError):
        parse_rewrites("a,-b")


def test_list_rewrites_and_help(capsys) -> None:
    assert main(["--list-rewrites"]) == 0
    listed = capsys.readouterr().out
    from pipeline.exporting import passes

    for name, _, _ in passes.list_passes():
        assert name in listed
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--input", "--dynamic", "--inputs-npz", "--exporter", "--opset", "--rewrites",
                 "--list-rewrites", "--no-simplify", "--atol", "--bisect-rewrites",
                 "--keep-intermediates", "--report", "--factory", "--debug", "examples:"):
        assert flag in text


def test_subprocess_smoke(tmp_path: Path) -> None:
    out = tmp_path / "small_cnn.onnx"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.export", "models.small_cnn:build", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout and out.is_file()
