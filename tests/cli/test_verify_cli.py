"""``python -m pipeline.verify``: ML Program vs ONNX / PyTorch reference, exit codes 0/1/2."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import coremltools as ct
import numpy as np
import pytest
import torch

from pipeline.cli.verify import main

FACTORY = '''
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 4)

    def forward(self, x):
        return torch.relu(self.fc(x)) * 2.0


def build():
    torch.manual_seed({seed})
    return Net().eval(), (torch.randn(2, 6),)
'''


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("verify")
    for name, seed in (("good", 0), ("other", 1)):
        (root / f"{name}.py").write_text(FACTORY.format(seed=seed))
    spec = importlib.util.spec_from_file_location("verify_good", root / "good.py")
    factory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(factory)  # the same module the --reference factory builds
    module, (example,) = factory.build()
    traced = torch.jit.trace(module, example)
    mlmodel = ct.convert(traced, inputs=[ct.TensorType(name="x", shape=example.shape)],
                         convert_to="mlprogram", compute_precision=ct.precision.FLOAT32)
    package = root / "net.mlpackage"
    mlmodel.save(str(package))
    onnx_path = root / "net.onnx"
    torch.onnx.export(module, (example,), str(onnx_path), input_names=["x"], dynamo=False)
    return root, package, onnx_path


def test_matches_onnx_reference(artefacts, capsys):
    _, package, onnx_path = artefacts
    assert main([str(package), "--reference", str(onnx_path)]) == 0
    out = capsys.readouterr().out
    assert "executor" in out and "max_abs=" in out and "cosine=" in out and "mismatches=0/" in out


def test_matches_torch_factory_reference(artefacts, capsys):
    root, package, _ = artefacts
    assert main([str(package), "--reference", f"{root / 'good.py'}:build"]) == 0
    assert "ok  " in capsys.readouterr().out


def test_different_weights_fail_with_exit_1(artefacts, capsys):
    root, package, _ = artefacts
    assert main([str(package), "--reference", f"{root / 'other.py'}:build"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_inputs_from_npz(artefacts, tmp_path):
    _, package, onnx_path = artefacts
    good = tmp_path / "good.npz"
    np.savez(good, x=np.random.default_rng(1).standard_normal((2, 6)).astype(np.float32))
    assert main([str(package), "--reference", str(onnx_path), "--inputs-npz", str(good)]) == 0
    wrong_name = tmp_path / "wrong.npz"
    np.savez(wrong_name, y=np.zeros((2, 6), np.float32))
    assert main([str(package), "--reference", str(onnx_path), "--inputs-npz", str(wrong_name)]) == 2
    wrong_shape = tmp_path / "shape.npz"
    np.savez(wrong_shape, x=np.zeros((3, 6), np.float32))
    assert main([str(package), "--reference", str(onnx_path), "--inputs-npz", str(wrong_shape)]) == 2


def test_bad_inputs_exit_2_with_one_line(artefacts, tmp_path, capsys):
    _, package, onnx_path = artefacts
    corrupt = tmp_path / "corrupt.mlpackage"
    corrupt.mkdir()
    (corrupt / "Manifest.json").write_text("nope")
    cases = [
        [str(tmp_path / "missing.mlpackage"), "--reference", str(onnx_path)],
        [str(corrupt), "--reference", str(onnx_path)],
        [str(package), "--reference", str(tmp_path / "missing.onnx")],
        [str(package), "--reference", str(onnx_path), "--inputs-npz", str(tmp_path / "no.npz")],
    ]
    for argv in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err


def test_subprocess_smoke(artefacts):
    _, package, onnx_path = artefacts
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.verify", str(package), "--reference", str(onnx_path)],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "mismatches=0/" in done.stdout
