"""Lowering of random generators: shapes and types against onnxruntime, values by statistics.

onnxruntime and Core ML share no random generator, so values are compared as distributions:
sample means within 5 standard errors of the distribution's mean (a false alarm about once in
3.5 million runs), ranges, and category frequencies.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto

from pipeline.lowering import lower
from pipeline.lowering.reference import run_onnxruntime
from tests.lowering.support import Case, make_model, rand

N = (100, 80)  # 8000 samples per draw


def draw(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """(our sample, onnxruntime's sample) for a one-node case; dtypes and shapes must agree.

    onnxruntime has no opset-22 kernels for these ops (22 only added bfloat16), so an opset-22
    case is probed at opset 21 and then lowered at 22.
    """
    opset = case.opset
    case.opset = min(opset, 21)
    model, feeds = make_model(case)
    expected = run_onnxruntime(model, feeds)["out0"]
    model.opset_import[0].version = opset
    got = lower(model, target=case.target, verify=False).predict(feeds)["out0"]
    assert got.shape == expected.shape and got.dtype == expected.dtype
    return got, expected


def within(sample: np.ndarray, mean: float, std: float) -> None:
    err = 5 * std / np.sqrt(sample.size)
    assert abs(float(sample.astype(np.float64).mean()) - mean) < err, (sample.mean(), mean, err)


@pytest.mark.parametrize("opset", [1, 22])
def test_random_normal(opset: int) -> None:
    got, _ = draw(Case("RandomNormal", [], {"shape": list(N), "mean": 2.0, "scale": 0.5, "seed": 3.0}, opset=opset))
    within(got, 2.0, 0.5)
    assert abs(got.std() - 0.5) < 0.02


def test_random_normal_fp16_like() -> None:
    x = rand(*N, dtype=np.float16)
    got, _ = draw(Case("RandomNormalLike", [x], {"mean": -1.0}, opset=22))
    within(got, -1.0, 1.0)


@pytest.mark.parametrize("opset", [1, 22])
def test_random_uniform(opset: int) -> None:
    got, _ = draw(Case("RandomUniform", [], {"shape": list(N), "low": -3.0, "high": 5.0}, opset=opset))
    assert got.min() >= -3.0 and got.max() < 5.0
    within(got, 1.0, 8.0 / np.sqrt(12))


def test_random_uniform_like_dtype() -> None:
    x = rand(*N)
    got, _ = draw(Case("RandomUniformLike", [x], {"dtype": TensorProto.DOUBLE, "high": 2.0}, opset=22))
    assert got.dtype == np.float64 and got.min() >= 0.0 and got.max() < 2.0
    within(got, 1.0, 2.0 / np.sqrt(12))


def test_random_seed_repeats() -> None:
    case = Case("RandomUniform", [], {"shape": [4, 5], "seed": 7.0}, opset=22)
    case.opset = 21
    model, _ = make_model(case)
    result = lower(model, verify=False)
    np.testing.assert_array_equal(result.predict({})["out0"], result.predict({})["out0"])


@pytest.mark.parametrize("opset,dtype", [(15, None), (22, TensorProto.INT64), (15, TensorProto.BOOL)])
def test_bernoulli(opset: int, dtype: int | None) -> None:
    p = np.tile(np.array([0.0, 0.2, 0.5, 0.9, 1.0], np.float32), N[0] * 16).reshape(-1, 5)
    attrs = {} if dtype is None else {"dtype": dtype}
    got, _ = draw(Case("Bernoulli", [p], attrs, opset=opset))
    flat = got.astype(np.float64)
    assert set(np.unique(flat)) <= {0.0, 1.0}
    assert flat[:, 0].max() == 0 and flat[:, 4].min() == 1
    for col, prob in ((1, 0.2), (2, 0.5), (3, 0.9)):
        within(flat[:, col], prob, np.sqrt(prob * (1 - prob)))


@pytest.mark.parametrize("opset,dtype", [(7, TensorProto.INT32), (22, TensorProto.INT64)])
def test_multinomial(opset: int, dtype: int) -> None:
    probs = np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]], np.float32)
    got, _ = draw(Case("Multinomial", [np.log(probs)], {"sample_size": 6000, "dtype": dtype}, opset=opset))
    assert got.min() >= 0 and got.max() < 3
    for row in range(2):
        for cls in range(3):
            prob = float(probs[row, cls])
            within((got[row] == cls).astype(np.float64), prob, np.sqrt(prob * (1 - prob)))
