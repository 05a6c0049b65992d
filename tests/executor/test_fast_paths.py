"""The executor's speed and memory paths: weight reading, per-op profiling, torch-backed kernels.

References are independent of the code under test: coremltools' own milproto loader for the
weights, numpy / ``math.erf`` formulas for gelu and softmax, an explicitly padded numpy window
maximum for max_pool.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import coremltools as ct
import numpy as np
import pytest
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.frontend.milproto.load import load as milproto_load
from coremltools.models.utils import _try_get_weights_dir_path, load_spec

from pipeline.executor import execute, load
from pipeline.executor.execute import PROFILE_ENV
from pipeline.executor.loader import BlobFileReader, ProgramLoadError
from pipeline.executor.runner import OpTimes
from tests.executor.support import rand, run1, tol

RNG = np.random.default_rng(11)
W32 = RNG.standard_normal((6, 8)).astype(np.float32)
S16 = RNG.standard_normal((2, 8)).astype(np.float16)
IDX = RNG.integers(0, 8, size=24).astype(np.int32)
Q8 = RNG.integers(-128, 128, size=(6, 8)).astype(np.int8)
U8 = RNG.integers(0, 256, size=(6, 8)).astype(np.uint8)


def _weights_program():
    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 8))], opset_version=ct.target.iOS18)
    def prog(x):
        y = mb.linear(x=x, weight=W32)
        half = mb.mul(x=mb.cast(x=x, dtype="fp16"), y=S16)
        z = mb.cast(x=half, dtype="fp32")
        g = mb.gather(x=x, indices=IDX, axis=1)
        q = mb.constexpr_blockwise_shift_scale(data=Q8, scale=np.full((6, 1), 0.5, np.float32))
        u = mb.constexpr_blockwise_shift_scale(data=U8, scale=np.full((6, 1), 0.25, np.float32),
                                               offset=np.full((6, 1), 3, np.uint8))
        return y, z, g, mb.linear(x=x, weight=q), mb.linear(x=x, weight=u)

    return prog


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    model = ct.convert(_weights_program(), convert_to="mlprogram",
                       compute_precision=ct.precision.FLOAT32,
                       pass_pipeline=ct.PassPipeline.EMPTY,
                       minimum_deployment_target=ct.target.iOS18)
    path = tmp_path_factory.mktemp("blobs") / "blobs.mlpackage"
    model.save(str(path))
    return path


def _const_values(program) -> list[np.ndarray]:
    """Array values of every const, in program order (names of inlined consts are generated)."""
    found = []
    for func in program.functions.values():
        for op in func.operations:
            if op.op_type == "const" and isinstance(op.outputs[0].val, np.ndarray):
                found.append(op.outputs[0].val)
            for var in op.inputs.values():
                if not isinstance(var, (list, tuple)) and var.op is not None and var.op.op_type \
                        == "const" and var.op not in func.operations:
                    found.append(var.val)  # consts built inline as another op's input
    return found


def test_weights_read_by_file_match_coremltools_reader(package: Path, monkeypatch) -> None:
    read: list[np.dtype] = []
    original = BlobFileReader._read

    def spy(self, offset, dtype):
        read.append(np.dtype(dtype))
        return original(self, offset, dtype)

    monkeypatch.setattr(BlobFileReader, "_read", spy)
    spec = load_spec(str(package))
    theirs = milproto_load(spec, specification_version=spec.specificationVersion,
                           file_weights_dir=_try_get_weights_dir_path(str(package)))
    ours = _const_values(load(package).program)
    reference = _const_values(theirs)
    assert len(ours) == len(reference)
    for got, want in zip(ours, reference):
        assert np.asarray(got).dtype == np.asarray(want).dtype
        np.testing.assert_array_equal(got, want)
    # Every kind of blob this test is about went through our reader (fp16 as its raw bits).
    assert {np.dtype(t) for t in (np.float32, np.uint16, np.int32, np.int8, np.uint8)} <= set(read)


def test_package_runs_like_the_formulas(package: Path) -> None:
    x = rand(2, 8, seed=5)
    y, z, g, q, u = execute(package, {"x": x}).values()
    np.testing.assert_allclose(y, x @ W32.T, **tol(np.float32))
    np.testing.assert_array_equal(z, (x.astype(np.float16) * S16).astype(np.float32))
    np.testing.assert_array_equal(g, x[:, IDX])
    np.testing.assert_allclose(q, x @ (Q8.astype(np.float32) * 0.5).T, **tol(np.float32))
    w_u = (U8.astype(np.float32) - 3) * 0.25
    np.testing.assert_allclose(u, x @ w_u.T, **tol(np.float32))


def test_corrupt_blob_record_names_the_file(package: Path, tmp_path: Path) -> None:
    weights = Path(_try_get_weights_dir_path(str(package))) / "weight.bin"
    data = bytearray(weights.read_bytes())
    data[64:68] = b"\0\0\0\0"  # the first blob record's sentinel
    bad = tmp_path / "weight.bin"
    bad.write_bytes(bytes(data))
    with pytest.raises(ProgramLoadError, match="no blob record at offset 64"):
        BlobFileReader(str(bad)).read_float_data(64)


def test_profile_counts_every_op_call() -> None:
    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3))], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.relu(x=mb.add(x=mb.relu(x=x), y=np.float32(1)))

    times = OpTimes()
    x = rand(2, 3)
    out = execute(prog, {"x": x}, profile=times)
    np.testing.assert_array_equal(next(iter(out.values())), np.maximum(np.maximum(x, 0) + 1, 0))
    assert times.calls == {"relu": 2, "add": 1}
    assert all(s >= 0 for s in times.seconds.values())
    assert times.table().splitlines()[0].split()[:3] == ["op", "type", "calls"]


def test_profile_environment_variable_logs_a_table(monkeypatch, caplog) -> None:
    @mb.program(input_specs=[mb.TensorSpec(shape=(4,))], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.sigmoid(x=x)

    monkeypatch.setenv(PROFILE_ENV, "1")
    with caplog.at_level(logging.INFO, logger="pipeline.executor.execute"):
        execute(prog, {"x": rand(4)})
    assert any("sigmoid" in r.getMessage() and "calls" in r.getMessage() for r in caplog.records)


DTYPES = [(np.float32, "fp32"), (np.float16, "fp16")]


def _cast_in(x, mil_dt):
    return x if mil_dt == "fp32" else mb.cast(x=x, dtype=mil_dt)


@pytest.mark.parametrize("np_dt,mil_dt", DTYPES)
@pytest.mark.parametrize("mode", ["EXACT", "TANH_APPROXIMATION"])
def test_gelu_matches_formula(np_dt, mil_dt, mode) -> None:
    @mb.program(input_specs=[mb.TensorSpec(shape=(3, 50))], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.gelu(x=_cast_in(x, mil_dt), mode=mode)

    x = rand(3, 50, low=-5, high=5, seed=2)
    v = x.astype(np_dt).astype(np.float64)
    if mode == "EXACT":
        want = 0.5 * v * (1 + np.vectorize(math.erf)(v / math.sqrt(2)))
    else:
        want = 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))
    got = run1(prog, x=x)
    assert got.dtype == np_dt
    np.testing.assert_allclose(got.astype(np.float64), want, **tol(np_dt))


@pytest.mark.parametrize("np_dt,mil_dt", DTYPES)
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_matches_formula(np_dt, mil_dt, axis) -> None:
    @mb.program(input_specs=[mb.TensorSpec(shape=(4, 5, 6))], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.softmax(x=_cast_in(x, mil_dt), axis=axis)

    x = rand(4, 5, 6, low=-8, high=8, seed=3)
    v = x.astype(np_dt).astype(np.float64)
    e = np.exp(v - v.max(axis=axis, keepdims=True))
    got = run1(prog, x=x)
    assert got.dtype == np_dt
    np.testing.assert_allclose(got.astype(np.float64), e / e.sum(axis=axis, keepdims=True),
                               **tol(np_dt))


def _max_pool_ref(x: np.ndarray, k: int, s: int, pads: tuple[int, int]) -> np.ndarray:
    """Window maxima of x [N, C, H, W] padded with -inf by ``pads`` on each side of H and W."""
    padded = np.pad(x.astype(np.float64), [(0, 0), (0, 0), pads, pads], constant_values=-np.inf)
    out_h = (padded.shape[2] - k) // s + 1
    out_w = (padded.shape[3] - k) // s + 1
    out = np.empty(x.shape[:2] + (out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            out[:, :, i, j] = padded[:, :, i * s : i * s + k, j * s : j * s + k].max(axis=(2, 3))
    return out


@pytest.mark.parametrize("np_dt,mil_dt", DTYPES)
@pytest.mark.parametrize("pad_type,pad,pads", [("same", None, (1, 1)),
                                               ("custom", [1, 1, 1, 1], (1, 1)),
                                               ("custom", [0, 0, 0, 0], (0, 0))])
def test_max_pool_symmetric_padding(np_dt, mil_dt, pad_type, pad, pads) -> None:
    # The ResNet stem: 3x3 window, stride 2, one padded row/column each side (odd size).
    kwargs = {"pad": pad} if pad is not None else {}

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 9, 9))], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.max_pool(x=_cast_in(x, mil_dt), kernel_sizes=[3, 3], strides=[2, 2],
                           pad_type=pad_type, **kwargs)

    x = rand(1, 3, 9, 9, seed=4, low=-3, high=-1)  # all negative: a 0 pad would win
    got = run1(prog, x=x)
    assert got.dtype == np_dt
    np.testing.assert_array_equal(got, _max_pool_ref(x.astype(np_dt), 3, 2, pads).astype(np_dt))
