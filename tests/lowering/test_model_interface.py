"""The delivered model's interface: image inputs/outputs, classifier, metadata, fp16 I/O.

Every model is saved, read back from the .mlpackage by the executor's milproto loader and fed
what a device would feed (pixels, fp16 arrays); the reference is onnxruntime on the ONNX model
with the preprocessing computed here in numpy.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest

import pipeline
from pipeline.errors import LoweringError
from pipeline.executor import execute
from pipeline.lowering.model_interface import (
    ImageInput,
    ImageOutput,
    InterfaceOptions,
    Metadata,
)
from pipeline.lowering.reference import run_onnxruntime
from pipeline.lowering.stage import TOLERANCES
from tests.lowering.interface_models import export_model, grey_conv

FP32 = TOLERANCES["fp32"]
FP16 = TOLERANCES["fp16"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("interface")


@pytest.fixture(scope="module")
def cnn(folder: Path) -> Path:
    return export_model("small_cnn", folder)


@pytest.fixture(scope="module")
def seg(folder: Path) -> Path:
    return export_model("face_seg", folder)


def _pixels(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape).astype(np.float32)


def test_rgb_image_input_with_per_channel_scale_and_bias(cnn: Path, folder: Path) -> None:
    std, mean = np.array([0.229, 0.224, 0.225]), np.array([0.485, 0.456, 0.406])
    spec = ImageInput("x", "BGR", tuple(1 / (255 * std)), tuple(-mean / std))
    out = folder / "image.mlpackage"
    pipeline.lower(cnn, out, interface=InterfaceOptions(images={"x": spec}))
    desc = pipeline.executor.load(out).program  # loads back through milproto
    assert desc is not None
    features = _spec(out).description.input[0]
    assert features.type.WhichOneof("Type") == "imageType"
    assert features.type.imageType.colorSpace == features.type.imageType.BGR
    assert (features.type.imageType.width, features.type.imageType.height) == (32, 32)
    pixels = _pixels((1, 3, 32, 32))
    x = (pixels / 255.0 - mean.reshape(1, 3, 1, 1)) / std.reshape(1, 3, 1, 1)
    expected = run_onnxruntime(onnx.load(cnn), {"x": x.astype(np.float32)})["linear"]
    actual = execute(out, {"x": pixels})["linear"]
    np.testing.assert_allclose(actual, expected, atol=FP32[0], rtol=FP32[1])


def test_grayscale_image_input_with_scalar_scale(folder: Path) -> None:
    path = grey_conv(folder)
    out = folder / "grey.mlpackage"
    spec = ImageInput("img", "GRAYSCALE", (2 / 255,), (-1.0,))
    result = pipeline.lower(path, out, interface=InterfaceOptions(images={"img": spec}))
    assert result.parity is not None and result.parity.ok
    image = _spec(out).description.input[0].type.imageType
    assert image.colorSpace == image.GRAYSCALE
    pixels = _pixels((1, 1, 8, 8), seed=3)
    expected = run_onnxruntime(onnx.load(path), {"img": pixels * (2 / 255) - 1})["y"]
    np.testing.assert_allclose(execute(out, {"img": pixels})["y"], expected, atol=FP32[0], rtol=FP32[1])
    ops = [op.op_type for op in result.program.functions["main"].operations if op.op_type != "const"]
    assert ops[:2] == ["mul", "add"]  # scalar scale: one broadcast mul, then the bias


def test_image_output_of_an_image_to_image_model(seg: Path, folder: Path) -> None:
    out = folder / "seg.mlpackage"
    interface = InterfaceOptions(
        images={"x": ImageInput("x", "RGB", (1 / 127.5,), (-1.0,))},
        image_outputs={"sigmoid": ImageOutput("sigmoid", scale=255.0)},
    )
    names = [o.name for o in onnx.load(seg).graph.output]
    if names != ["sigmoid"]:
        interface.image_outputs = {names[0]: ImageOutput(names[0], scale=255.0)}
    pipeline.lower(seg, out, interface=interface)
    output = _spec(out).description.output[0]
    assert output.type.WhichOneof("Type") == "imageType"
    assert output.type.imageType.colorSpace == output.type.imageType.GRAYSCALE
    pixels = _pixels((1, 3, 64, 64), seed=1)
    expected = run_onnxruntime(onnx.load(seg), {"x": pixels / 127.5 - 1})[names[0]]
    actual = execute(out, {"x": pixels})[output.name]
    np.testing.assert_allclose(actual, 255.0 * expected, atol=255 * FP32[0], rtol=FP32[1])


def test_classifier_outputs_label_and_probabilities(cnn: Path, folder: Path) -> None:
    labels = [f"class_{i}" for i in range(10)]
    out = folder / "classifier.mlpackage"
    result = pipeline.lower(cnn, out, interface=InterfaceOptions(class_labels=labels))
    desc = _spec(out).description
    assert desc.predictedFeatureName == "classLabel"
    assert desc.predictedProbabilitiesName == "classLabel_probs"
    assert result.report["classifier"]["top1_agreement"] == 1.0
    for seed in range(3):
        x = np.random.default_rng(seed).standard_normal((1, 3, 32, 32)).astype(np.float32)
        ref = run_onnxruntime(onnx.load(cnn), {"x": x})["linear"].reshape(-1)
        got = execute(out, {"x": x})
        assert got["classLabel"] == labels[int(np.argmax(ref))]
        probs = np.array([got["classLabel_probs"][label] for label in labels])
        np.testing.assert_allclose(probs, ref, atol=FP32[0], rtol=FP32[1])


def test_metadata_and_source_hash_are_recorded(cnn: Path, folder: Path) -> None:
    out = folder / "meta.mlpackage"
    md = Metadata(author="Ada", license="MIT", version="1.2.3", description="a small CNN",
                  inputs={"x": "the image"}, outputs={"linear": "logits"})
    pipeline.lower(cnn, out, interface=InterfaceOptions(metadata=md))
    desc = _spec(out).description
    assert (desc.metadata.author, desc.metadata.license) == ("Ada", "MIT")
    assert (desc.metadata.versionString, desc.metadata.shortDescription) == ("1.2.3", "a small CNN")
    assert desc.input[0].shortDescription == "the image"
    assert desc.output[0].shortDescription == "logits"
    user = desc.metadata.userDefined
    assert user["pipeline.source_sha256"] == hashlib.sha256(cnn.read_bytes()).hexdigest()
    assert user["pipeline.version"] == pipeline.__version__
    assert user["pipeline.precision"] == "fp32"


def test_source_hash_is_recorded_without_options(cnn: Path) -> None:
    proto = onnx.load(cnn)
    result = pipeline.lower(proto)
    user = result.mlmodel.get_spec().description.metadata.userDefined
    assert user["pipeline.source_sha256"] == hashlib.sha256(proto.SerializeToString()).hexdigest()


def test_fp16_io_raises_the_target_and_matches(cnn: Path, folder: Path) -> None:
    out = folder / "fp16.mlpackage"
    result = pipeline.lower(cnn, out, target="iOS15", precision="fp16",
                            interface=InterfaceOptions(io_dtype="fp16"))
    assert result.report["target"] == "iOS16"
    assert any("float16 inputs/outputs" in w for w in result.report["warnings"])
    desc = _spec(out).description
    fp16 = desc.input[0].type.multiArrayType.FLOAT16
    assert desc.input[0].type.multiArrayType.dataType == fp16
    assert desc.output[0].type.multiArrayType.dataType == fp16
    x = np.random.default_rng(5).standard_normal((1, 3, 32, 32)).astype(np.float32)
    got = execute(out, {"x": x.astype(np.float16)})["linear"]
    assert got.dtype == np.float16
    expected = run_onnxruntime(onnx.load(cnn), {"x": x})["linear"]
    np.testing.assert_allclose(got.astype(np.float32), expected, atol=FP16[0], rtol=FP16[1])


def test_fp16_io_refuses_an_old_target_when_not_raised(cnn: Path) -> None:
    with pytest.raises(LoweringError, match="iOS16"):
        pipeline.lower(cnn, target="iOS15", raise_target=False, interface=InterfaceOptions(io_dtype="fp16"))


@pytest.mark.parametrize(
    ("interface", "message"),
    [
        (InterfaceOptions(images={"nope": ImageInput("nope")}), "no model input named 'nope'"),
        (InterfaceOptions(images={"x": ImageInput("x", "GRAYSCALE")}), r"must be \(1, 1, H, W\)"),
        (InterfaceOptions(images={"x": ImageInput("x", "RGB", (1.0, 2.0))}), "takes 1 or 3 scale"),
        (InterfaceOptions(class_labels=["a", "b"]), "has 10 values but --class-labels lists 2"),
        (InterfaceOptions(image_outputs={"linear": ImageOutput("linear")}), "image output 'linear'"),
    ],
)
def test_bad_interface_options_say_what_to_do(cnn: Path, interface: InterfaceOptions, message: str) -> None:
    with pytest.raises(LoweringError, match=message):
        pipeline.lower(cnn, verify=False, interface=interface)


def _spec(path: Path):
    from coremltools.models.utils import load_spec

    return load_spec(str(path))
