"""Executor kernels of MIL activation ops vs torch.nn.functional / numpy in float64."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import coremltools as ct
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

from tests.executor.support import rand, run1, tol

FLOATS = [(types.fp32, np.float32), (types.fp16, np.float16)]
OPSETS = [ct.target.iOS15, ct.target.iOS17]


def _prog(
    build: Callable[[Any], Any], shape: tuple[int, ...], dtype: Any, opset: Any = ct.target.iOS17
) -> Any:
    @mb.program(input_specs=[mb.TensorSpec(shape=shape, dtype=dtype)], opset_version=opset)
    def prog(x: Any) -> Any:
        return build(x)

    return prog


def _t(fn: Callable[..., torch.Tensor], **kw: Any) -> Callable[[np.ndarray], np.ndarray]:
    return lambda v: fn(torch.from_numpy(v), **kw).numpy()


def _check(got: np.ndarray, want: np.ndarray, np_dtype: Any) -> None:
    assert got.dtype == np_dtype
    np.testing.assert_allclose(
        got.astype(np.float64), want.astype(np_dtype).astype(np.float64), **tol(np_dtype)
    )


def _sig(v: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-v))


# (name, builder given the parameter dtype, float64 reference)
CASES: list[tuple[str, Callable[[Any, Any], Any], Callable[[np.ndarray], np.ndarray]]] = [
    ("relu", lambda x, d: mb.relu(x=x), _t(F.relu)),
    ("relu6", lambda x, d: mb.relu6(x=x), _t(F.relu6)),
    ("sigmoid", lambda x, d: mb.sigmoid(x=x), _t(torch.sigmoid)),
    ("silu", lambda x, d: mb.silu(x=x), _t(F.silu)),
    ("softplus", lambda x, d: mb.softplus(x=x), _t(F.softplus)),
    ("softsign", lambda x, d: mb.softsign(x=x), _t(F.softsign)),
    ("elu", lambda x, d: mb.elu(x=x, alpha=d(0.7)), _t(F.elu, alpha=0.7)),
    (
        "leaky_relu",
        lambda x, d: mb.leaky_relu(x=x, alpha=d(0.1)),
        _t(F.leaky_relu, negative_slope=0.1),
    ),
    (
        "clamped_relu",
        lambda x, d: mb.clamped_relu(x=x, alpha=d(0.3), beta=d(1.5)),
        lambda v: np.minimum(1.5, np.where(v >= 0, v, 0.3 * v)),
    ),
    (
        "linear_activation",
        lambda x, d: mb.linear_activation(x=x, alpha=d(-1.5), beta=d(0.25)),
        lambda v: -1.5 * v + 0.25,
    ),
    (
        "scaled_tanh",
        lambda x, d: mb.scaled_tanh(x=x, alpha=d(1.7), beta=d(0.6)),
        lambda v: 1.7 * np.tanh(0.6 * v),
    ),
    (
        "sigmoid_hard",
        lambda x, d: mb.sigmoid_hard(x=x, alpha=d(0.2), beta=d(0.5)),
        lambda v: np.clip(0.2 * v + 0.5, 0, 1),
    ),
    (
        "thresholded_relu",
        lambda x, d: mb.thresholded_relu(x=x, alpha=d(0.5)),
        lambda v: np.where(v >= 0.5, v, 0),
    ),
    ("gelu_exact", lambda x, d: mb.gelu(x=x), _t(F.gelu)),
    ("gelu_exact_mode", lambda x, d: mb.gelu(x=x, mode="EXACT"), _t(F.gelu)),
    (
        "gelu_tanh",
        lambda x, d: mb.gelu(x=x, mode="TANH_APPROXIMATION"),
        _t(F.gelu, approximate="tanh"),
    ),
    (
        "gelu_sigmoid",
        lambda x, d: mb.gelu(x=x, mode="SIGMOID_APPROXIMATION"),
        lambda v: v * _sig(1.702 * v),
    ),
    ("softmax_last", lambda x, d: mb.softmax(x=x), _t(F.softmax, dim=-1)),
    ("softmax_axis1", lambda x, d: mb.softmax(x=x, axis=1), _t(F.softmax, dim=1)),
    ("softmax_neg_axis", lambda x, d: mb.softmax(x=x, axis=-3), _t(F.softmax, dim=-3)),
]


@pytest.mark.parametrize("mil_dtype,np_dtype", FLOATS, ids=["fp32", "fp16"])
@pytest.mark.parametrize("name,build,ref", CASES, ids=[c[0] for c in CASES])
def test_activation(name: str, build: Any, ref: Any, mil_dtype: Any, np_dtype: Any) -> None:
    x = rand(2, 3, 4, 5, dtype=np_dtype, low=-4, high=4)
    got = run1(_prog(lambda v: build(v, np_dtype), x.shape, mil_dtype, ct.target.iOS15), x=x)
    _check(got, ref(x.astype(np.float64)), np_dtype)


def test_iOS17_param_dtype_may_differ() -> None:
    """iOS17: alpha/beta fp32 on an fp16 x; the result stays fp16."""
    x = rand(3, 8, dtype=np.float16, low=-3, high=3)
    prog = _prog(
        lambda v: mb.clamped_relu(x=v, alpha=np.float32(0.2), beta=np.float32(2.0)),
        x.shape,
        types.fp16,
    )
    v = x.astype(np.float64)
    _check(run1(prog, x=x), np.minimum(2.0, np.where(v >= 0, v, 0.2 * v)), np.float16)


@pytest.mark.parametrize("opset", OPSETS, ids=["iOS15", "iOS17"])
@pytest.mark.parametrize("mil_dtype,np_dtype", FLOATS, ids=["fp32", "fp16"])
def test_prelu_per_channel(mil_dtype: Any, np_dtype: Any, opset: Any) -> None:
    x = rand(2, 3, 4, 5, dtype=np_dtype, low=-2, high=2)
    alpha = np.array([0.1, 0.5, -0.25], np_dtype)
    got = run1(_prog(lambda v: mb.prelu(x=v, alpha=alpha), x.shape, mil_dtype, opset), x=x)
    want = F.prelu(
        torch.from_numpy(x.astype(np.float64)), torch.from_numpy(alpha.astype(np.float64))
    ).numpy()
    _check(got, want, np_dtype)


@pytest.mark.parametrize("shape", [(2, 3, 6), (1, 3, 2, 2, 2)], ids=["rank3", "rank5"])
def test_prelu_rank3_and_rank5(shape: tuple[int, ...]) -> None:
    x = rand(*shape, low=-2, high=2)
    alpha = np.full((3,), 0.2, np.float32)  # MIL requires equal alphas at ranks 3 and 5
    got = run1(_prog(lambda v: mb.prelu(x=v, alpha=alpha), x.shape, types.fp32), x=x)
    np.testing.assert_allclose(
        got, np.where(x > 0, x, 0.2 * x.astype(np.float64)), **tol(np.float32)
    )


@pytest.mark.parametrize("mil_dtype,np_dtype", FLOATS, ids=["fp32", "fp16"])
def test_softplus_parametric(mil_dtype: Any, np_dtype: Any) -> None:
    x = rand(2, 3, 4, 4, dtype=np_dtype, low=-3, high=3)
    alpha = np.array([1.0, 0.5, 2.0], np_dtype)
    beta = np.array([1.0, 3.0, -0.5], np_dtype)
    got = run1(
        _prog(
            lambda v: mb.softplus_parametric(x=v, alpha=alpha, beta=beta),
            x.shape,
            mil_dtype,
            ct.target.iOS15,
        ),
        x=x,
    )
    a = alpha.astype(np.float64).reshape(1, 3, 1, 1)
    b = beta.astype(np.float64).reshape(1, 3, 1, 1)
    _check(got, a * np.log1p(np.exp(b * x.astype(np.float64))), np_dtype)


def test_large_magnitudes_stay_finite() -> None:
    x = np.array([[-1000.0, -90.0, 0.0, 90.0, 1000.0]], np.float32)
    for build, ref in [
        (lambda v: mb.sigmoid(x=v), lambda v: torch.sigmoid(torch.from_numpy(v)).numpy()),
        (lambda v: mb.softplus(x=v), lambda v: F.softplus(torch.from_numpy(v)).numpy()),
        (lambda v: mb.softmax(x=v), lambda v: F.softmax(torch.from_numpy(v), dim=-1).numpy()),
        (lambda v: mb.silu(x=v), lambda v: F.silu(torch.from_numpy(v)).numpy()),
    ]:
        got = run1(_prog(build, x.shape, types.fp32), x=x)
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, ref(x.astype(np.float64)), **tol(np.float32))


def test_softmax_empty() -> None:
    x = np.zeros((0, 4), np.float32)
    got = run1(_prog(lambda v: mb.softmax(x=v, axis=-1), x.shape, types.fp32), x=x)
    assert got.shape == (0, 4)
