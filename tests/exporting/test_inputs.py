"""Input specs, dynamic dims and npz inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.errors import InputSpecError
from pipeline.exporting import inputs


@pytest.mark.parametrize(
    ("text", "name", "shape", "dtype"),
    [
        ("x:1x3x224x224:float32", "x", (1, 3, 224, 224), torch.float32),
        ("x:1x3x224x224", "x", (1, 3, 224, 224), torch.float32),
        ("ids:2x8:int64", "ids", (2, 8), torch.int64),
        ("mask:4:bool", "mask", (4,), torch.bool),
        ("s:scalar:float16", "s", (), torch.float16),
        ("s::int32", "s", (), torch.int32),
    ],
)
def test_parse_input(text: str, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    spec = inputs.parse_input(text)
    assert (spec.name, spec.shape, spec.dtype) == (name, shape, dtype)
    example = spec.example(torch.Generator().manual_seed(0))
    assert tuple(example.shape) == shape and example.dtype == dtype


@pytest.mark.parametrize(
    "text", ["x", "x:1x3:float32:extra", "x:1xAx3", "x:1x3:complex7", "1x:2", "x:-1x3", ":2x2"]
)
def test_parse_input_rejects(text: str) -> None:
    with pytest.raises(InputSpecError) as info:
        inputs.parse_input(text)
    assert "\n" not in str(info.value) and "--input" in str(info.value)


def test_examples_are_deterministic_and_typed() -> None:
    specs = [inputs.parse_input("a:2x3"), inputs.parse_input("b:5:int64")]
    first, second = inputs.make_examples(specs), inputs.make_examples(specs)
    assert all(torch.equal(p, q) for p, q in zip(first, second, strict=True))
    assert first[0].std() > 0  # not a constant tensor
    assert first[1].dtype == torch.int64 and int(first[1].min()) >= 0 and int(first[1].max()) < 10


def test_parse_dynamic() -> None:
    got = inputs.parse_dynamic(["x:0=batch", "x:2=height,3=width", "y:1=seq"])
    assert got == {"x": {0: "batch", 2: "height", 3: "width"}, "y": {1: "seq"}}


@pytest.mark.parametrize("text", ["x", "x:batch", "x:a=batch", "x:0=", "x:-1=b", "x:0=1bad"])
def test_parse_dynamic_rejects(text: str) -> None:
    with pytest.raises(InputSpecError):
        inputs.parse_dynamic([text])


def test_check_dynamic_names_and_ranks() -> None:
    ex = (torch.zeros(2, 3),)
    inputs.check_dynamic({"x": {1: "n"}}, ["x"], ex)
    with pytest.raises(InputSpecError, match="no input called"):
        inputs.check_dynamic({"y": {0: "n"}}, ["x"], ex)
    with pytest.raises(InputSpecError, match="out of range"):
        inputs.check_dynamic({"x": {2: "n"}}, ["x"], ex)


def test_forward_names() -> None:
    class Two(torch.nn.Module):
        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return image * mask

    assert inputs.forward_names(Two(), 2) == ["image", "mask"]
    assert inputs.forward_names(Two(), 3) == ["input_0", "input_1", "input_2"]


def test_npz_roundtrip_missing_and_corrupt(tmp_path) -> None:
    good = tmp_path / "in.npz"
    np.savez(good, x=np.arange(6, dtype=np.float32).reshape(2, 3), extra=np.zeros(1))
    arrays = inputs.load_npz(good, ["x"])
    assert list(arrays) == ["x"] and arrays["x"].shape == (2, 3)
    with pytest.raises(InputSpecError, match="missing input"):
        inputs.load_npz(good, ["x", "y"])
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputSpecError, match="cannot read"):
        inputs.load_npz(bad, ["x"])


def test_check_against_shapes_and_dtypes() -> None:
    ex = (torch.zeros(2, 3),)
    inputs.check_against(ex, (torch.ones(5, 3),), ["x"], {"x": {0: "b"}})
    with pytest.raises(InputSpecError, match="exported for"):
        inputs.check_against(ex, (torch.ones(5, 3),), ["x"], {})
    with pytest.raises(InputSpecError):
        inputs.check_against(ex, (torch.ones(2, 3, dtype=torch.float64),), ["x"], {})
