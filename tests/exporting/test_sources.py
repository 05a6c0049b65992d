"""Model source specs: factories, torchvision, TorchScript, torch.export, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.errors import ModelLoadError
from pipeline.exporting import sources
from tests.exporting.support import Tiny, tiny

FACTORY = "tests.exporting.support:tiny"


def test_factory_with_examples() -> None:
    loaded = sources.load(FACTORY)
    module, examples = tiny()
    assert loaded.kind == "factory" and isinstance(loaded.module, Tiny)
    assert not loaded.module.training
    assert loaded.example_inputs is not None and torch.equal(loaded.example_inputs[0], examples[0])
    # Seeded: the same weights every time.
    assert torch.equal(loaded.module.fc.weight, module.fc.weight)


def test_factory_module_only() -> None:
    loaded = sources.load("tests.exporting.support:tiny_module_only")
    assert isinstance(loaded.module, Tiny) and loaded.example_inputs is None


def test_factory_from_file(tmp_path: Path) -> None:
    src = tmp_path / "net.py"
    src.write_text("import torch\ndef build():\n    return torch.nn.ReLU()\n")
    loaded = sources.load(f"{src}:build")
    assert isinstance(loaded.module, torch.nn.ReLU)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("tests.exporting.support:raising_factory", "factory raised RuntimeError"),
        ("tests.exporting.support:not_a_module", "returned int"),
        ("tests.exporting.support:nothing_here", "no callable"),
        ("no_such_module_xyz:build", "cannot import"),
        ("just-a-word", "not a file and not module:factory"),
        ("torchvision:no_such_net", "torchvision has no model"),
        ("missing.pt2", "does not exist"),
        ("missing.pt", "does not exist"),
    ],
)
def test_bad_specs(spec: str, needle: str) -> None:
    with pytest.raises(ModelLoadError) as info:
        sources.load(spec)
    assert needle in str(info.value)


def test_torchvision_random_weights() -> None:
    loaded = sources.load("torchvision:resnet18")
    assert loaded.kind == "torchvision" and not loaded.module.training
    assert loaded.example_inputs is not None
    assert tuple(loaded.example_inputs[0].shape) == sources.TORCHVISION_INPUT


def test_torchscript_archive(tmp_path: Path) -> None:
    module, (x,) = tiny()
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.trace(module, (x,)), str(path))
    loaded = sources.load(str(path))
    assert loaded.kind == "torchscript"
    torch.testing.assert_close(loaded.module(x), module(x))


def test_corrupt_torchscript(tmp_path: Path) -> None:
    path = tmp_path / "broken.pt"
    path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelLoadError, match="--factory"):
        sources.load(str(path))


def test_exported_program_archive(tmp_path: Path) -> None:
    module, (x,) = tiny()
    path = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(module, (x,)), str(path))
    loaded = sources.load(str(path))
    assert loaded.kind == "exported_program"
    assert loaded.example_inputs is not None and torch.equal(loaded.example_inputs[0], x)
    torch.testing.assert_close(loaded.callable_module()(x), module(x))


def test_checkpoint_loads_weights(tmp_path: Path) -> None:
    other = Tiny()
    with torch.no_grad():
        other.fc.weight.fill_(0.25)
    path = tmp_path / "w.pth"
    torch.save({"state_dict": other.state_dict()}, path)
    loaded = sources.load(str(path), factory=FACTORY)
    assert loaded.kind == "checkpoint"
    assert torch.equal(loaded.module.fc.weight, other.fc.weight)


def test_checkpoint_refuses_pickled_objects(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    # A full pickled module: loading it would run arbitrary unpickling code paths.
    torch.save({"model": Tiny(), "fc.weight": torch.zeros(3, 4)}, path)
    with pytest.raises(ModelLoadError, match="weights_only=True"):
        sources.load(str(path), factory=FACTORY)


def test_checkpoint_corrupt_and_mismatched(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(ModelLoadError, match="cannot load"):
        sources.load(str(bad), factory=FACTORY)
    wrong = tmp_path / "wrong.pth"
    torch.save({"other.weight": torch.zeros(2)}, wrong)
    with pytest.raises(ModelLoadError, match="does not fit"):
        sources.load(str(wrong), factory=FACTORY)
