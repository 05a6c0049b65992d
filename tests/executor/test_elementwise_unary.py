"""Executor kernels of MIL elementwise unary ops vs numpy/math references (float64, rounded)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import coremltools as ct
import numpy as np
import pytest
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

from tests.executor.support import rand, run1, tol

FLOATS = [(types.fp32, np.float32), (types.fp16, np.float16)]
_erf = np.vectorize(math.erf)


def _prog(build: Callable[[Any], Any], shape: tuple[int, ...], dtype: Any, opset: Any) -> Any:
    @mb.program(input_specs=[mb.TensorSpec(shape=shape, dtype=dtype)], opset_version=opset)
    def prog(x: Any) -> Any:
        return build(x)

    return prog


def _check(got: np.ndarray, want: np.ndarray, np_dtype: Any) -> None:
    assert got.dtype == np_dtype
    np.testing.assert_allclose(
        got.astype(np.float64), want.astype(np_dtype).astype(np.float64), **tol(np_dtype)
    )


# (op name, builder, float64 reference, input range)
CASES: list[
    tuple[str, Callable[[Any], Any], Callable[[np.ndarray], np.ndarray], tuple[float, float]]
] = [
    ("abs", lambda x: mb.abs(x=x), np.abs, (-3, 3)),
    ("acos", lambda x: mb.acos(x=x), np.arccos, (-0.99, 0.99)),
    ("asin", lambda x: mb.asin(x=x), np.arcsin, (-0.99, 0.99)),
    ("atan", lambda x: mb.atan(x=x), np.arctan, (-5, 5)),
    ("atanh", lambda x: mb.atanh(x=x), np.arctanh, (-0.9, 0.9)),
    ("ceil", lambda x: mb.ceil(x=x), np.ceil, (-3, 3)),
    ("cos", lambda x: mb.cos(x=x), np.cos, (-4, 4)),
    ("cosh", lambda x: mb.cosh(x=x), np.cosh, (-3, 3)),
    ("erf", lambda x: mb.erf(x=x), _erf, (-3, 3)),
    ("exp", lambda x: mb.exp(x=x), np.exp, (-4, 4)),
    ("exp2", lambda x: mb.exp2(x=x), np.exp2, (-4, 4)),
    ("floor", lambda x: mb.floor(x=x), np.floor, (-3, 3)),
    ("sign", lambda x: mb.sign(x=x), np.sign, (-3, 3)),
    ("sin", lambda x: mb.sin(x=x), np.sin, (-4, 4)),
    ("sinh", lambda x: mb.sinh(x=x), np.sinh, (-3, 3)),
    ("sqrt", lambda x: mb.sqrt(x=x), np.sqrt, (0, 9)),
    ("square", lambda x: mb.square(x=x), np.square, (-3, 3)),
    ("tan", lambda x: mb.tan(x=x), np.tan, (-1.2, 1.2)),
    ("tanh", lambda x: mb.tanh(x=x), np.tanh, (-3, 3)),
    ("inverse", lambda x: mb.inverse(x=x, epsilon=0.5), lambda v: 1 / (v + 0.5), (0, 3)),
    ("log", lambda x: mb.log(x=x, epsilon=0.25), lambda v: np.log(v + 0.25), (0, 5)),
    ("rsqrt", lambda x: mb.rsqrt(x=x, epsilon=0.5), lambda v: 1 / np.sqrt(v + 0.5), (0, 5)),
]


@pytest.mark.parametrize("mil_dtype,np_dtype", FLOATS, ids=["fp32", "fp16"])
@pytest.mark.parametrize("name,build,ref,domain", CASES, ids=[c[0] for c in CASES])
def test_unary_float(
    name: str, build: Any, ref: Any, domain: Any, mil_dtype: Any, np_dtype: Any
) -> None:
    x = rand(3, 4, 5, dtype=np_dtype, low=domain[0], high=domain[1])
    # iOS17: epsilon literals (fp32) may differ from an fp16 x there.
    got = run1(_prog(build, x.shape, mil_dtype, ct.target.iOS17), x=x)
    _check(got, ref(x.astype(np.float64)), np_dtype)


@pytest.mark.parametrize("opset", [ct.target.iOS15, ct.target.iOS17], ids=["iOS15", "iOS17"])
def test_default_epsilons(opset: Any) -> None:
    x = rand(2, 6, low=0.5, high=4.0)
    got = run1(_prog(lambda v: mb.inverse(x=v), x.shape, types.fp32, opset), x=x)
    np.testing.assert_allclose(got, 1 / (x.astype(np.float64) + 1e-4), **tol(np.float32))
    got = run1(_prog(lambda v: mb.rsqrt(x=v), x.shape, types.fp32, opset), x=x)
    np.testing.assert_allclose(got, 1 / np.sqrt(x.astype(np.float64) + 1e-12), **tol(np.float32))
    zero = np.zeros((1, 2), np.float32)
    got = run1(_prog(lambda v: mb.log(x=v), zero.shape, types.fp32, opset), x=zero)
    assert np.all(np.isfinite(got)) and np.all(got < -100)  # log(1e-45) ~ -103.6, not -inf


def test_iOS17_epsilon_of_other_dtype() -> None:
    """iOS17 lets epsilon be fp32 on an fp16 x; the result stays fp16."""
    x = rand(4, 4, dtype=np.float16, low=0.0, high=2.0)
    prog = _prog(
        lambda v: mb.inverse(x=v, epsilon=np.float32(0.25)), x.shape, types.fp16, ct.target.iOS17
    )
    _check(run1(prog, x=x), 1 / (x.astype(np.float64) + 0.25), np.float16)


def test_round_ties_to_even() -> None:
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49, -0.51, 3.7], np.float32)
    got = run1(_prog(lambda v: mb.round(x=v), x.shape, types.fp32, ct.target.iOS15), x=x)
    np.testing.assert_array_equal(got, [-2.0, -2.0, -0.0, 0.0, 2.0, 2.0, 0.0, -1.0, 4.0])


@pytest.mark.parametrize("mil_dtype,np_dtype", FLOATS, ids=["fp32", "fp16"])
def test_clip_and_threshold(mil_dtype: Any, np_dtype: Any) -> None:
    x = rand(5, 7, dtype=np_dtype, low=-3, high=3)
    prog = _prog(
        lambda v: mb.clip(x=v, alpha=np_dtype(-1.0), beta=np_dtype(1.5)),
        x.shape,
        mil_dtype,
        ct.target.iOS17,
    )
    _check(run1(prog, x=x), np.minimum(np.maximum(x, -1.0), 1.5), np_dtype)
    prog = _prog(
        lambda v: mb.threshold(x=v, alpha=np_dtype(0.25)), x.shape, mil_dtype, ct.target.iOS15
    )
    _check(run1(prog, x=x), np.maximum(x, 0.25), np_dtype)


def test_int32_ops() -> None:
    x = np.array([[-3, -1, 0, 2, 5]], np.int32)
    for build, ref in [
        (lambda v: mb.abs(x=v), np.abs(x)),
        (lambda v: mb.sign(x=v), np.sign(x)),
        (lambda v: mb.square(x=v), x * x),
        (lambda v: mb.threshold(x=v, alpha=np.int32(1)), np.maximum(x, 1)),
        (lambda v: mb.exp2(x=v), np.array([[0, 0, 1, 4, 32]])),
    ]:
        got = run1(_prog(build, x.shape, types.int32, ct.target.iOS15), x=x)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, ref)


def test_logical_not() -> None:
    x = np.array([[True, False, True]])
    got = run1(_prog(lambda v: mb.logical_not(x=v), x.shape, types.bool, ct.target.iOS15), x=x)
    np.testing.assert_array_equal(got, [[False, True, False]])


def test_empty_tensor() -> None:
    x = np.zeros((0, 3), np.float32)
    got = run1(_prog(lambda v: mb.exp(x=v), x.shape, types.fp32, ct.target.iOS15), x=x)
    assert got.shape == (0, 3) and got.dtype == np.float32


@pytest.mark.parametrize(
    "src_mil,src_np,dtype,want",
    [
        (types.fp32, np.float32, "int32", np.array([-2, -1, 0, 0, 1, 2], np.int32)),
        (types.fp32, np.float32, "fp16", None),
        (types.fp32, np.float32, "bool", np.array([True, True, True, False, True, True])),
        (types.fp16, np.float16, "fp32", None),
        (types.int32, np.int32, "fp32", None),
    ],
)
def test_cast_iOS15(src_mil: Any, src_np: Any, dtype: str, want: Any) -> None:
    x = np.array([-2.7, -1.5, -0.2, 0.0, 1.5, 2.9]).astype(src_np)
    got = run1(_prog(lambda v: mb.cast(x=v, dtype=dtype), x.shape, src_mil, ct.target.iOS15), x=x)
    expect = (
        want
        if want is not None
        else x.astype(np.dtype(types.nptype_from_builtin(types.string_to_builtin(dtype))))
    )
    assert got.dtype == np.asarray(expect).dtype
    np.testing.assert_array_equal(got, expect)


@pytest.mark.parametrize(
    "dtype,np_dtype",
    [("int8", np.int8), ("uint8", np.uint8), ("int16", np.int16), ("uint16", np.uint16)],
)
def test_cast_iOS17_small_ints(dtype: str, np_dtype: Any) -> None:
    """Truncation toward zero for in-range values (as C casts); out of range saturates."""
    x = np.array([-7.9, -0.5, 0.0, 3.99, 100.2, 1e6], np.float32)
    got = run1(
        _prog(lambda v: mb.cast(x=v, dtype=dtype), x.shape, types.fp32, ct.target.iOS17), x=x
    )
    info = np.iinfo(np_dtype)
    want = np.clip(np.array([math.trunc(v) for v in x.tolist()]), info.min, info.max).astype(
        np_dtype
    )
    assert got.dtype == np_dtype
    np.testing.assert_array_equal(got, want)


def test_cast_from_small_int_iOS17() -> None:
    x = np.array([-128, -1, 0, 127], np.int8)
    got = run1(
        _prog(lambda v: mb.cast(x=v, dtype="fp16"), x.shape, types.int8, ct.target.iOS17), x=x
    )
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, x.astype(np.float16))


def test_cast_kernel_rejects_unknown_dtype() -> None:
    """The builder validates dtype; a loaded program could still carry a bad one."""
    from pipeline.errors import ExecutorError, PipelineError
    from pipeline.executor.kernels.elementwise_unary import cast

    with pytest.raises(ExecutorError, match="fp64") as info:
        cast(x=np.zeros(2, np.float32), dtype="fp64")
    assert isinstance(info.value, PipelineError)
