"""Executor kernels of MIL elementwise binary ops vs numpy/Python semantics, with broadcasting."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import coremltools as ct
import numpy as np
import pytest
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

from tests.executor.support import rand, run1, tol

FLOATS = [(types.fp32, np.float32), (types.fp16, np.float16)]


def _prog2(
    build: Callable[[Any, Any], Any], xs: tuple[int, ...], ys: tuple[int, ...], dtype: Any
) -> Any:
    specs = [mb.TensorSpec(shape=xs, dtype=dtype), mb.TensorSpec(shape=ys, dtype=dtype)]

    @mb.program(input_specs=specs, opset_version=ct.target.iOS17)
    def prog(x: Any, y: Any) -> Any:
        return build(x, y)

    return prog


ARITH: list[tuple[str, Callable[[Any, Any], Any], Callable[[Any, Any], Any]]] = [
    ("add", lambda x, y: mb.add(x=x, y=y), np.add),
    ("sub", lambda x, y: mb.sub(x=x, y=y), np.subtract),
    ("mul", lambda x, y: mb.mul(x=x, y=y), np.multiply),
    ("real_div", lambda x, y: mb.real_div(x=x, y=y), np.divide),
    ("maximum", lambda x, y: mb.maximum(x=x, y=y), np.maximum),
    ("minimum", lambda x, y: mb.minimum(x=x, y=y), np.minimum),
    ("pow", lambda x, y: mb.pow(x=x, y=y), np.power),
    ("floor_div", lambda x, y: mb.floor_div(x=x, y=y), lambda a, b: np.floor(a / b)),
    ("mod", lambda x, y: mb.mod(x=x, y=y), lambda a, b: a - np.floor(a / b) * b),
]

COMPARE: list[tuple[str, Callable[[Any, Any], Any], Callable[[Any, Any], Any]]] = [
    ("equal", lambda x, y: mb.equal(x=x, y=y), operator.eq),
    ("not_equal", lambda x, y: mb.not_equal(x=x, y=y), operator.ne),
    ("greater", lambda x, y: mb.greater(x=x, y=y), operator.gt),
    ("greater_equal", lambda x, y: mb.greater_equal(x=x, y=y), operator.ge),
    ("less", lambda x, y: mb.less(x=x, y=y), operator.lt),
    ("less_equal", lambda x, y: mb.less_equal(x=x, y=y), operator.le),
]

# Broadcasting pairs: same shape, trailing vector, size-1 axes on both sides, rank mismatch.
SHAPES = [((2, 3), (2, 3)), ((2, 3, 4), (4,)), ((3, 1, 5), (1, 4, 1)), ((4,), (2, 3, 4))]


@pytest.mark.parametrize("mil_dtype,np_dtype", FLOATS, ids=["fp32", "fp16"])
@pytest.mark.parametrize("xs,ys", SHAPES)
@pytest.mark.parametrize("name,build,ref", ARITH, ids=[c[0] for c in ARITH])
def test_arith_float(
    name: str, build: Any, ref: Any, xs: Any, ys: Any, mil_dtype: Any, np_dtype: Any
) -> None:
    x = rand(*xs, dtype=np_dtype, seed=1, low=0.5, high=3.0)
    y = rand(*ys, dtype=np_dtype, seed=2, low=0.5, high=2.0)
    if name in ("sub", "floor_div", "mod"):  # also negative operands
        x = (x - np_dtype(1.75)).astype(np_dtype)
        y = np.where(np.arange(y.size).reshape(y.shape) % 2 == 0, y, -y).astype(np_dtype)
    got = run1(_prog2(build, xs, ys, mil_dtype), x=x, y=y)
    want = ref(x.astype(np.float64), y.astype(np.float64)).astype(np_dtype)
    assert got.dtype == np_dtype and got.shape == np.broadcast_shapes(xs, ys)
    if name == "mod":  # the result takes the divisor's sign (Python's %)
        assert np.all((got == 0) | (np.sign(got) == np.sign(np.broadcast_to(y, got.shape))))
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), **tol(np_dtype))


def test_int32_arith() -> None:
    x = np.array([[7, -7, 7, -7, 0, 9]], np.int32)
    y = np.array([[2, 2, -2, -2, 3, 3]], np.int32)
    cases = [
        (lambda a, b: mb.add(x=a, y=b), [9, -5, 5, -9, 3, 12]),
        (lambda a, b: mb.sub(x=a, y=b), [5, -9, 9, -5, -3, 6]),
        (lambda a, b: mb.mul(x=a, y=b), [14, -14, -14, 14, 0, 27]),
        (lambda a, b: mb.floor_div(x=a, y=b), [7 // 2, -7 // 2, 7 // -2, -7 // -2, 0, 3]),
        (lambda a, b: mb.mod(x=a, y=b), [7 % 2, -7 % 2, 7 % -2, -7 % -2, 0, 0]),
        (lambda a, b: mb.maximum(x=a, y=b), [7, 2, 7, -2, 3, 9]),
        (lambda a, b: mb.minimum(x=a, y=b), [2, -7, -2, -7, 0, 3]),
        (lambda a, b: mb.pow(x=a, y=b), [49, 49, 0, 0, 0, 729]),  # 7^-2 truncates to 0
        (lambda a, b: mb.real_div(x=a, y=b), [3, -3, -3, 3, 0, 3]),  # toward zero
    ]
    for build, want in cases:
        got = run1(_prog2(build, x.shape, y.shape, types.int32), x=x, y=y)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got[0], want)


@pytest.mark.parametrize(
    "mil_dtype,np_dtype", FLOATS + [(types.int32, np.int32)], ids=["fp32", "fp16", "int32"]
)
@pytest.mark.parametrize("name,build,ref", COMPARE, ids=[c[0] for c in COMPARE])
def test_compare(name: str, build: Any, ref: Any, mil_dtype: Any, np_dtype: Any) -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, size=(3, 4)).astype(np_dtype)
    y = rng.integers(-2, 3, size=(4,)).astype(np_dtype)
    got = run1(_prog2(build, x.shape, y.shape, mil_dtype), x=x, y=y)
    assert got.dtype == np.bool_
    want = [[ref(int(a), int(b)) for a, b in zip(row, y)] for row in x]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "build,ref",
    [
        (lambda x, y: mb.logical_and(x=x, y=y), lambda a, b: a and b),
        (lambda x, y: mb.logical_or(x=x, y=y), lambda a, b: a or b),
        (lambda x, y: mb.logical_xor(x=x, y=y), lambda a, b: a != b),
    ],
    ids=["and", "or", "xor"],
)
def test_logical(build: Any, ref: Any) -> None:
    x = np.array([[True, True], [False, False]])
    y = np.array([True, False])
    got = run1(_prog2(build, x.shape, y.shape, types.bool), x=x, y=y)
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(
        got, [[ref(bool(a), bool(b)) for a, b in zip(row, y)] for row in x]
    )


def test_const_scalar_operand_and_empty() -> None:
    @mb.program(input_specs=[mb.TensorSpec(shape=(0, 3))], opset_version=ct.target.iOS15)
    def prog(x: Any) -> Any:
        return mb.mul(x=x, y=np.float32(2.0))

    got = run1(prog, x=np.zeros((0, 3), np.float32))
    assert got.shape == (0, 3) and got.dtype == np.float32

    @mb.program(
        input_specs=[mb.TensorSpec(shape=(2, 2), dtype=types.fp16)], opset_version=ct.target.iOS15
    )
    def prog16(x: Any) -> Any:
        return mb.sub(x=np.float16(1.0), y=x)

    x = rand(2, 2, dtype=np.float16)
    got = run1(prog16, x=x)
    assert got.dtype == np.float16
    np.testing.assert_allclose(
        got, (1.0 - x.astype(np.float64)).astype(np.float16), **tol(np.float16)
    )
