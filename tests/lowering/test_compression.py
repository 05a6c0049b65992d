"""Weight compression: each setting saves, loads back through milproto, holds compressed weights
whose values obey the setting's definition (checked in numpy against the ONNX initializer), and
passes parity against onnxruntime fp32 within the tolerance the setting implies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import pipeline
from pipeline.errors import LoweringError
from pipeline.executor import execute, load
from pipeline.lowering.compression import CompressionOptions
from pipeline.lowering.reference import run_onnxruntime
from tests.lowering.interface_models import export_model

SMALL = 100  # compress the small CNN's conv weights too (coremltools skips < 2048 by default)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compression")


@pytest.fixture(scope="module")
def cnn(folder: Path) -> Path:
    return export_model("small_cnn", folder)


def _classifier_weight(path: Path) -> np.ndarray:
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}
    return next(v for k, v in inits.items() if k.startswith("classifier") and v.ndim == 2)


def _constexpr(path: Path, kind: str) -> list:
    ops = load(path).program.functions["main"].operations
    return [op for op in ops if op.op_type == kind and "classifier" in op.outputs[0].name]


SETTINGS = [
    (CompressionOptions(quantize="int8", weight_threshold=SMALL), "iOS16", "constexpr_affine_dequantize"),
    (CompressionOptions(palettize=8, weight_threshold=SMALL), "iOS16", "constexpr_lut_to_dense"),
    (CompressionOptions(palettize=6, weight_threshold=SMALL), "iOS16", "constexpr_lut_to_dense"),
    (CompressionOptions(palettize=4, weight_threshold=SMALL), "iOS16", "constexpr_lut_to_dense"),
    (CompressionOptions(prune=0.5, weight_threshold=SMALL), "iOS16", "constexpr_sparse_to_dense"),
    (CompressionOptions(quantize="int8", blockwise=True, block_size=8, weight_threshold=SMALL), "iOS18", "constexpr_blockwise_shift_scale"),
    (CompressionOptions(quantize="int4", blockwise=True, block_size=8, weight_threshold=SMALL), "iOS18", "constexpr_blockwise_shift_scale"),
    (CompressionOptions(palettize=4, blockwise=True, block_size=2, weight_threshold=SMALL), "iOS18", "constexpr_lut_to_dense"),
]


@pytest.mark.parametrize(("options", "target", "kind"), SETTINGS, ids=[s[0].label() for s in SETTINGS])
def test_setting_saves_loads_and_meets_its_tolerance(cnn: Path, folder: Path, options: CompressionOptions, target: str, kind: str) -> None:
    out = folder / f"{options.label()}.mlpackage"
    result = pipeline.lower(cnn, out, compression=options)
    assert result.report["target"] == target
    figures = result.report["compression"]
    assert figures["compressed_tensors"] >= 1
    assert figures["size_after"] < figures["size_before"]
    assert _constexpr(out, kind), f"no {kind} for the classifier weight in the saved program"
    # Independent of the stage's own check: the saved package against onnxruntime fp32.
    x = np.random.default_rng(7).standard_normal((1, 3, 32, 32)).astype(np.float32)
    ref = run_onnxruntime(onnx.load(cnn), {"x": x})["linear"]
    got = execute(out, result.adapter.adapt_feeds({"x": x}))["linear"]
    error = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
    assert figures["bounded"] is (figures["tolerance"] < 1.0)
    if figures["bounded"]:
        assert error <= figures["tolerance"]
    assert result.mlmodel.user_defined_metadata["pipeline.compression"] == options.label()


def test_int8_per_channel_error_is_at_most_half_a_step(cnn: Path, folder: Path) -> None:
    out = folder / "int8-check.mlpackage"
    pipeline.lower(cnn, out, compression=CompressionOptions(quantize="int8", weight_threshold=SMALL))
    (op,) = _constexpr(out, "constexpr_affine_dequantize")
    q = op.quantized_data.val.astype(np.float64)
    scale = np.asarray(op.scale.val, np.float64)
    zero = np.asarray(op.zero_point.val, np.float64)
    axis = int(op.axis.val)
    shape = [1] * q.ndim
    shape[axis] = -1
    dense = (q - zero.reshape(shape)) * scale.reshape(shape)  # MIL constexpr_affine_dequantize
    w = _classifier_weight(cnn).astype(np.float64)
    assert dense.shape == w.shape
    # symmetric per output channel: scale_c = max|w_c| / 127, rounding error <= scale_c / 2
    np.testing.assert_allclose(scale.reshape(-1), np.max(np.abs(w), axis=1) / 127, rtol=1e-3)
    assert np.all(np.abs(dense - w) <= scale.reshape(shape) / 2 * (1 + 1e-3))


@pytest.mark.parametrize("bits", [4, 6])
def test_palettized_weights_take_at_most_2_to_the_bits_values(cnn: Path, folder: Path, bits: int) -> None:
    out = folder / f"lut{bits}.mlpackage"
    pipeline.lower(cnn, out, compression=CompressionOptions(palettize=bits, weight_threshold=SMALL))
    (op,) = _constexpr(out, "constexpr_lut_to_dense")
    dense = np.asarray(op.materialized_val_inference())
    assert len(np.unique(dense)) <= 2**bits
    w = _classifier_weight(cnn)
    # k-means: every weight maps to its nearest centroid
    lut = np.unique(dense)
    nearest = lut[np.argmin(np.abs(w.reshape(-1, 1) - lut.reshape(1, -1)), axis=1)]
    np.testing.assert_allclose(dense.reshape(-1), nearest, atol=1e-6)


def test_pruning_zeroes_the_smallest_weights(cnn: Path, folder: Path) -> None:
    out = folder / "prune-check.mlpackage"
    pipeline.lower(cnn, out, compression=CompressionOptions(prune=0.5, weight_threshold=SMALL))
    (op,) = _constexpr(out, "constexpr_sparse_to_dense")
    dense = np.asarray(op.materialized_val_inference(), np.float32)
    w = _classifier_weight(cnn)
    assert np.mean(dense == 0) >= 0.5 - 1e-3
    kept = dense != 0
    np.testing.assert_array_equal(dense[kept], w[kept])
    assert np.max(np.abs(w[~kept])) <= np.min(np.abs(w[kept]))


def test_blockwise_refuses_an_old_target_when_not_raised(cnn: Path) -> None:
    with pytest.raises(LoweringError, match="iOS18"):
        pipeline.lower(cnn, target="iOS17", raise_target=False, verify=False,
                       compression=CompressionOptions(quantize="int8", blockwise=True))


@pytest.mark.parametrize(
    ("options", "backend", "message"),
    [
        (CompressionOptions(quantize="int8", palettize=4), "mlprogram", "choose one of"),
        (CompressionOptions(quantize="int4"), "mlprogram", "blockwise only"),
        (CompressionOptions(prune=1.5), "mlprogram", r"in \(0, 1\)"),
        (CompressionOptions(quantize="int8"), "neuralnetwork", "needs the mlprogram backend"),
    ],
)
def test_bad_compression_options_say_what_to_do(cnn: Path, options: CompressionOptions, backend: str, message: str) -> None:
    with pytest.raises(LoweringError, match=message):
        pipeline.lower(cnn, backend=backend, verify=False, compression=options)
