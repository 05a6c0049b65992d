"""``python -m pipeline.lower`` with --extensions, --composites, --custom-layers and --list-ops."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from pipeline.cli.lower import main

ROOT = Path(__file__).resolve().parents[2]


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, path)
    return path


def _max_model(tmp: Path) -> Path:
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in ("a", "b", "y")]
    node = helper.make_node("Max", ["a", "b"], ["y"], name="max")
    return _save(helper.make_model(helper.make_graph([node], "g", vi[:2], vi[2:]),
                                   opset_imports=[helper.make_opsetid("", 13)]), tmp / "max.onnx")


def test_list_ops_prints_the_three_kinds(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--list-ops"]) == 0
    rows = {line.split()[0]: line.split()[-1] for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["Relu"] == "native"
    assert rows["Swish"] == "composite"
    assert rows["Max"] == "native/composite"
    assert rows["BitCast"] == "custom-layer-only"
    assert rows["StringSplit"] == "unsupported"


def test_composites_option(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = _max_model(tmp_path)
    assert main([str(model), "-o", str(tmp_path / "m.mlpackage"), "--composites", "Max",
                 "--report", str(tmp_path / "r.json")]) == 0
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert report["nodes"][0]["kind"] == "composite" and report["parity"]["ok"]


def test_custom_layers_need_the_nn_backend(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = _max_model(tmp_path)
    assert main([str(model), "--custom-layers", "Max"]) == 2
    err = capsys.readouterr().err
    assert "neural-network" in err and "composite" in err


def test_custom_layers_write_swift(tmp_path: Path) -> None:
    model = _max_model(tmp_path)
    out = tmp_path / "m.mlmodel"
    assert main([str(model), "-o", str(out), "--backend", "neuralnetwork", "--custom-layers", "Max", "-q"]) == 0
    swift = (tmp_path / "m_custom_layers" / "MaxLayer.swift").read_text()
    assert "Swift.max(dst[i], src[i])" in swift and "func encode(commandBuffer" in swift


def test_extensions_register_a_user_composite(tmp_path: Path) -> None:
    """A user composite for a user-domain op, loaded with --extensions, in a subprocess."""
    ext = ROOT / "models" / "extensions" / "sigmoid_tanh.py"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])
    node = helper.make_node("SigmoidTanh", ["x"], ["y"], domain="example.activations")
    body = helper.make_function(
        "example.activations", "SigmoidTanh", ["X"], ["Y"],
        [helper.make_node("Sigmoid", ["X"], ["s"]), helper.make_node("Tanh", ["X"], ["t"]),
         helper.make_node("Mul", ["s", "t"], ["Y"])],
        [helper.make_opsetid("", 18)],
    )
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]), functions=[body],
                              opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("example.activations", 1)])
    path = _save(model, tmp_path / "act.onnx")
    np.savez(tmp_path / "in.npz", x=np.linspace(-3, 3, 8, dtype=np.float32).reshape(2, 4))
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.lower", str(path), "-o", str(tmp_path / "act.mlpackage"),
         "--extensions", str(ext), "--inputs-npz", str(tmp_path / "in.npz")],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ok   y" in done.stdout


def test_missing_extension_file_is_a_clean_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main([str(_max_model(tmp_path)), "--extensions", str(tmp_path / "nope.py")]) == 2
    assert "nope.py is not a Python file" in capsys.readouterr().err
