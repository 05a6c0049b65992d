"""``python -m pipeline.lower`` interface and compression flags: main(argv) and one subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from pipeline.cli.lower import main
from pipeline.executor import execute
from pipeline.lowering.reference import run_onnxruntime
from tests.lowering.interface_models import export_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_model("small_cnn", tmp_path_factory.mktemp("cli_interface"))


def test_image_classifier_with_metadata_and_int8(cnn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"l{i}" for i in range(10)) + "\n")
    out = tmp_path / "m.mlpackage"
    code = main([str(cnn), "-o", str(out), "--image-input", "x", "--scale", "0.00784314",
                 "--bias=-1", "--class-labels", str(labels), "--author", "Ada", "--version", "3",
                 "--input-description", "x=photo", "--quantize", "int8",
                 "--compress-min-elements", "100"])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "compression:" in printed and "top1_agreement" in printed
    from coremltools.models.utils import load_spec

    desc = load_spec(str(out)).description
    assert desc.metadata.author == "Ada" and desc.metadata.versionString == "3"
    assert desc.input[0].shortDescription == "photo"
    pixels = np.random.default_rng(0).integers(0, 256, (1, 3, 32, 32)).astype(np.float32)
    ref = run_onnxruntime(onnx.load(cnn), {"x": pixels * np.float32(0.00784314) - 1})["linear"]
    assert execute(out, {"x": pixels})["classLabel"] == f"l{int(np.argmax(ref))}"


def test_bad_flag_values_exit_2_with_one_line(cnn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(cnn), "-o", str(tmp_path / "m.mlpackage"), "--image-input", "x", "--bias=1,2"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "bias" in err
    code = main([str(cnn), "-o", str(tmp_path / "m.mlpackage"), "--quantize", "int4"])
    assert code == 2 and "--blockwise" in capsys.readouterr().err


def test_subprocess_palettize_fp16(cnn: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.mlpackage"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.lower", str(cnn), "-o", str(out), "--precision", "fp16",
         "--palettize", "6", "--io-dtype", "fp16", "-q"],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.is_dir()
