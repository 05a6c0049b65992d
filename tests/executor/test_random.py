"""Executor kernels of MIL random ops: shape, dtype, seeded determinism and sample statistics.

Statistical bounds: with N samples, a sample mean is within 5 standard errors (sigma / sqrt(N))
of the true mean except with probability < 1e-6; the tests use fixed seeds, so they are
deterministic, and the bound says why a correct sampler passes.
"""

from __future__ import annotations

import coremltools as ct
import numpy as np
import pytest
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

from tests.executor.support import run, run1

N = 200_000
FLOATS = [(np.float32, types.fp32), (np.float16, types.fp16)]


def _prog(make):
    @mb.program(input_specs=[mb.TensorSpec((1,))], opset_version=ct.target.iOS15)
    def prog(x):
        return make()

    return lambda: run(prog, x=np.zeros(1, np.float32))


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
def test_random_uniform(np_dt, mil_dt) -> None:
    go = _prog(lambda: mb.random_uniform(shape=np.array([N], np.int32), low=np_dt(-1.0), high=np_dt(3.0), seed=7))
    (a,), (b,) = go(), go()
    assert a.dtype == np_dt and a.shape == (N,)
    np.testing.assert_array_equal(a, b)  # same seed, same values
    assert a.min() >= -1.0 and a.max() < 3.0
    sd = 4 / np.sqrt(12)
    assert abs(a.astype(np.float64).mean() - 1.0) < 5 * sd / np.sqrt(N)
    assert abs(a.astype(np.float64).var() - sd**2) < 0.02 * sd**2


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
def test_random_normal(np_dt, mil_dt) -> None:
    go = _prog(lambda: mb.random_normal(shape=np.array([N // 100, 100], np.int32), mean=np_dt(2.0),
                                        stddev=np_dt(0.5), seed=3))
    (a,), (b,) = go(), go()
    assert a.dtype == np_dt and a.shape == (N // 100, 100)
    np.testing.assert_array_equal(a, b)
    x = a.astype(np.float64)
    assert abs(x.mean() - 2.0) < 5 * 0.5 / np.sqrt(N)
    assert abs(x.std() - 0.5) < 0.01


def test_random_bernoulli() -> None:
    go = _prog(lambda: mb.random_bernoulli(shape=np.array([N], np.int32), prob=np.float32(0.3), seed=11))
    (a,), (b,) = go(), go()
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) <= {0.0, 1.0}
    assert abs(a.mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / N)


def test_unseeded_draws_differ() -> None:
    go = _prog(lambda: mb.random_uniform(shape=np.array([64], np.int32)))
    (a,), (b,) = go(), go()
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("mode", ["logits", "probs"])
def test_random_categorical(mode: str) -> None:
    probs = np.array([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0]], np.float32)
    x = np.log(np.maximum(probs, 1e-30)).astype(np.float32) if mode == "logits" else probs

    @mb.program(input_specs=[mb.TensorSpec((2, 3))], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.random_categorical(x=x, mode=mode, size=N // 10, seed=5)

    out = run1(prog, x=x)
    assert out.shape == (2, N // 10) and out.dtype == np.float32
    np.testing.assert_array_equal(out, run1(prog, x=x))
    for row in range(2):
        freq = np.bincount(out[row].astype(int), minlength=3) / out.shape[1]
        se = np.sqrt(probs[row] * (1 - probs[row]) / out.shape[1])
        assert np.all(np.abs(freq - probs[row]) <= 5 * se + 1e-12)
