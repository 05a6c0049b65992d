"""Executor kernels of MIL reduction ops vs numpy (float64) references."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import coremltools as ct
import numpy as np
import pytest
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

from tests.executor.support import rand, run1, tol


def _prog(
    build: Callable[[Any], Any], shape: tuple[int, ...], dtype: Any, opset: Any = ct.target.iOS15
) -> Any:
    @mb.program(input_specs=[mb.TensorSpec(shape=shape, dtype=dtype)], opset_version=opset)
    def prog(x: Any) -> Any:
        return build(x)

    return prog


def _lse(v: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    return np.log(np.sum(np.exp(v), axis=axis, keepdims=keepdims))


# (name, builder(x, axes, keep_dims), numpy reference(v, axis, keepdims), input range)
CASES: list[tuple[str, Callable[..., Any], Callable[..., np.ndarray], tuple[float, float]]] = [
    ("reduce_sum", lambda x, a, k: mb.reduce_sum(x=x, axes=a, keep_dims=k), np.sum, (-2, 2)),
    ("reduce_mean", lambda x, a, k: mb.reduce_mean(x=x, axes=a, keep_dims=k), np.mean, (-2, 2)),
    ("reduce_prod", lambda x, a, k: mb.reduce_prod(x=x, axes=a, keep_dims=k), np.prod, (0.5, 1.5)),
    ("reduce_max", lambda x, a, k: mb.reduce_max(x=x, axes=a, keep_dims=k), np.max, (-2, 2)),
    ("reduce_min", lambda x, a, k: mb.reduce_min(x=x, axes=a, keep_dims=k), np.min, (-2, 2)),
    (
        "reduce_l1_norm",
        lambda x, a, k: mb.reduce_l1_norm(x=x, axes=a, keep_dims=k),
        lambda v, axis, keepdims: np.sum(np.abs(v), axis=axis, keepdims=keepdims),
        (-2, 2),
    ),
    (
        "reduce_l2_norm",
        lambda x, a, k: mb.reduce_l2_norm(x=x, axes=a, keep_dims=k),
        lambda v, axis, keepdims: np.sqrt(np.sum(v * v, axis=axis, keepdims=keepdims)),
        (-2, 2),
    ),
    (
        "reduce_sum_square",
        lambda x, a, k: mb.reduce_sum_square(x=x, axes=a, keep_dims=k),
        lambda v, axis, keepdims: np.sum(v * v, axis=axis, keepdims=keepdims),
        (-2, 2),
    ),
    (
        "reduce_log_sum",
        lambda x, a, k: mb.reduce_log_sum(x=x, axes=a, keep_dims=k),
        lambda v, axis, keepdims: np.log(np.sum(v, axis=axis, keepdims=keepdims)),
        (0.1, 2),
    ),
    (
        "reduce_log_sum_exp",
        lambda x, a, k: mb.reduce_log_sum_exp(x=x, axes=a, keep_dims=k),
        _lse,
        (-3, 3),
    ),
]

AXES = [(None, False), ([1], False), ([1], True), ([-1, 0], False), ([0, 2], True)]
FLOATS = [(types.fp32, np.float32), (types.fp16, np.float16)]


@pytest.mark.parametrize("mil_dtype,np_dtype", FLOATS, ids=["fp32", "fp16"])
@pytest.mark.parametrize("axes,keep", AXES, ids=[f"{a}-{k}" for a, k in AXES])
@pytest.mark.parametrize("name,build,ref,domain", CASES, ids=[c[0] for c in CASES])
def test_reduce_float(
    name: str,
    build: Any,
    ref: Any,
    domain: Any,
    axes: Any,
    keep: bool,
    mil_dtype: Any,
    np_dtype: Any,
) -> None:
    x = rand(3, 4, 5, dtype=np_dtype, low=domain[0], high=domain[1])
    got = run1(_prog(lambda v: build(v, axes, keep), x.shape, mil_dtype), x=x)
    axis = None if axes is None else tuple(axes)
    want = np.asarray(ref(x.astype(np.float64), axis=axis, keepdims=keep))
    assert got.dtype == np_dtype and got.shape == want.shape
    np.testing.assert_allclose(
        got.astype(np.float64), want.astype(np_dtype).astype(np.float64), **tol(np_dtype)
    )


def test_reduce_int32() -> None:
    x = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    cases = [
        (lambda v: mb.reduce_sum(x=v, axes=[1]), x.sum(axis=1)),
        (lambda v: mb.reduce_max(x=v, axes=[0]), x.max(axis=0)),
        (lambda v: mb.reduce_min(x=v, axes=[-1], keep_dims=True), x.min(axis=-1, keepdims=True)),
        (lambda v: mb.reduce_prod(x=v, axes=[0]), x.prod(axis=0)),
        (lambda v: mb.reduce_mean(x=v, axes=[1]), np.trunc(x.mean(axis=1))),  # -4.5 -> -4, 1.5->1
        (lambda v: mb.reduce_l1_norm(x=v), np.abs(x).sum()),
        (lambda v: mb.reduce_sum_square(x=v, axes=[0]), (x * x).sum(axis=0)),
    ]
    for build, want in cases:
        got = run1(_prog(build, x.shape, types.int32), x=x)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want)


def test_log_sum_exp_is_stable() -> None:
    x = np.array([[1000.0, 1000.0, -1000.0], [-1e4, -1e4, -1e4]], np.float32)
    got = run1(_prog(lambda v: mb.reduce_log_sum_exp(x=v, axes=[1]), x.shape, types.fp32), x=x)
    np.testing.assert_allclose(got, [1000.0 + np.log(2.0), -1e4 + np.log(3.0)], **tol(np.float32))


def test_fp16_sum_accumulates_wide() -> None:
    """2048 ones then 2048 halves: a sequential fp16 sum stalls at 2048 (ulp 2); we round once."""
    x = np.concatenate([np.ones(2048), np.full(2048, 0.5)]).astype(np.float16).reshape(1, -1)
    got = run1(_prog(lambda v: mb.reduce_sum(x=v, axes=[1]), x.shape, types.fp16), x=x)
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float64), [3072.0], **tol(np.float16))


@pytest.mark.parametrize(
    "build,ref",
    [
        (lambda x: mb.reduce_sum(x=x, axes=[0]), lambda v: np.sum(v, axis=0)),
        (lambda x: mb.reduce_prod(x=x, axes=[0]), lambda v: np.prod(v, axis=0)),
        (lambda x: mb.reduce_max(x=x, axes=[0]), lambda v: np.full(v.shape[1:], -np.inf)),
        (lambda x: mb.reduce_min(x=x, axes=[0]), lambda v: np.full(v.shape[1:], np.inf)),
    ],
    ids=["sum", "prod", "max", "min"],
)
def test_empty_reduction_gives_identity(build: Any, ref: Any) -> None:
    x = np.zeros((0, 3), np.float32)
    got = run1(_prog(build, x.shape, types.fp32), x=x)
    np.testing.assert_array_equal(got, ref(x))


ARG = [
    ("reduce_argmax", lambda x, **k: mb.reduce_argmax(x=x, **k), np.argmax),
    ("reduce_argmin", lambda x, **k: mb.reduce_argmin(x=x, **k), np.argmin),
]


@pytest.mark.parametrize(
    "mil_dtype,np_dtype", FLOATS + [(types.int32, np.int32)], ids=["fp32", "fp16", "int32"]
)
@pytest.mark.parametrize("axis,keep", [(None, False), (0, False), (-2, True), (2, False)])
@pytest.mark.parametrize("name,build,ref", ARG, ids=[c[0] for c in ARG])
def test_reduce_arg(
    name: str, build: Any, ref: Any, axis: Any, keep: bool, mil_dtype: Any, np_dtype: Any
) -> None:
    # Small integer values force ties: the first index of the extreme is expected.
    x = np.random.default_rng(4).integers(-3, 4, size=(3, 4, 5)).astype(np_dtype)
    kw: dict[str, Any] = {} if axis is None else {"axis": axis}
    if keep:
        kw["keep_dims"] = True
    got = run1(_prog(lambda v: build(v, **kw), x.shape, mil_dtype), x=x)
    want = ref(x, axis=-1 if axis is None else axis, keepdims=keep)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("output_dtype,np_dtype", [("int32", np.int32), ("uint16", np.uint16)])
def test_reduce_arg_iOS17_output_dtype(output_dtype: str, np_dtype: Any) -> None:
    x = rand(4, 6, seed=5)
    got = run1(
        _prog(
            lambda v: mb.reduce_argmax(x=v, axis=1, output_dtype=output_dtype),
            x.shape,
            types.fp32,
            ct.target.iOS17,
        ),
        x=x,
    )
    assert got.dtype == np_dtype
    np.testing.assert_array_equal(got, np.argmax(x, axis=1))
    got = run1(
        _prog(
            lambda v: mb.reduce_argmin(x=v, axis=0, keep_dims=True, output_dtype=output_dtype),
            x.shape,
            types.fp32,
            ct.target.iOS17,
        ),
        x=x,
    )
    np.testing.assert_array_equal(got, np.argmin(x, axis=0, keepdims=True))
