"""Executor kernels of MIL linear, matmul and einsum vs numpy float64 references."""

from __future__ import annotations

from typing import Any

import coremltools as ct
import numpy as np
import pytest
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

from tests.executor.support import rand, run1, tol

FLOATS = [(types.fp32, np.float32), (types.fp16, np.float16)]


def _check(got: np.ndarray, want: np.ndarray, np_dtype: Any) -> None:
    assert got.dtype == np_dtype and got.shape == want.shape
    np.testing.assert_allclose(
        got.astype(np.float64), want.astype(np_dtype).astype(np.float64), **tol(np_dtype)
    )


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("shape", [(6,), (4, 6), (2, 3, 6)], ids=["rank1", "rank2", "rank3"])
@pytest.mark.parametrize("mil_dtype,np_dtype", FLOATS, ids=["fp32", "fp16"])
def test_linear(mil_dtype: Any, np_dtype: Any, shape: tuple[int, ...], with_bias: bool) -> None:
    x = rand(*shape, dtype=np_dtype, seed=1)
    w = rand(5, 6, dtype=np_dtype, seed=2)
    b = rand(5, dtype=np_dtype, seed=3)

    @mb.program(
        input_specs=[mb.TensorSpec(shape=shape, dtype=mil_dtype)], opset_version=ct.target.iOS15
    )
    def prog(x: Any) -> Any:
        return mb.linear(x=x, weight=w, bias=b) if with_bias else mb.linear(x=x, weight=w)

    want = x.astype(np.float64) @ w.astype(np.float64).T + (
        b.astype(np.float64) if with_bias else 0
    )
    _check(run1(prog, x=x), want, np_dtype)


def test_linear_iOS17_fp32_weight_on_fp16_x() -> None:
    x = rand(3, 8, dtype=np.float16)
    w = rand(4, 8, seed=7)

    @mb.program(
        input_specs=[mb.TensorSpec(shape=x.shape, dtype=types.fp16)], opset_version=ct.target.iOS17
    )
    def prog(x: Any) -> Any:
        return mb.linear(x=x, weight=w)

    _check(run1(prog, x=x), x.astype(np.float64) @ w.astype(np.float64).T, np.float16)


MATMUL_SHAPES = [
    ((3, 4), (4, 5), False, False),
    ((2, 3, 4), (4, 5), False, False),
    ((10, 4, 3), (5, 10, 4, 2), True, False),  # batch broadcast with transpose of x
    ((2, 1, 3, 4), (1, 6, 5, 4), False, True),  # batch broadcasting both sides
    ((4,), (2, 4, 3), False, False),  # rank-1 x promoted then squeezed
    # (the MIL builder rejects a rank-1 y: its type inference reads y.shape[-2])
    ((0, 4), (4, 3), False, False),  # empty
]


@pytest.mark.parametrize("mil_dtype,np_dtype", FLOATS, ids=["fp32", "fp16"])
@pytest.mark.parametrize("xs,ys,tx,ty", MATMUL_SHAPES)
def test_matmul(xs: Any, ys: Any, tx: bool, ty: bool, mil_dtype: Any, np_dtype: Any) -> None:
    x = rand(*xs, dtype=np_dtype, seed=1)
    y = rand(*ys, dtype=np_dtype, seed=2)
    specs = [mb.TensorSpec(shape=xs, dtype=mil_dtype), mb.TensorSpec(shape=ys, dtype=mil_dtype)]

    @mb.program(input_specs=specs, opset_version=ct.target.iOS15)
    def prog(x: Any, y: Any) -> Any:
        return mb.matmul(x=x, y=y, transpose_x=tx, transpose_y=ty)

    a = x.astype(np.float64)
    b = y.astype(np.float64)
    a = np.swapaxes(a, -1, -2) if tx else a
    b = np.swapaxes(b, -1, -2) if ty else b
    _check(run1(prog, x=x, y=y), np.asarray(np.matmul(a, b)), np_dtype)


def test_matmul_int32_and_iOS17_mixed() -> None:
    x = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    y = np.arange(8, dtype=np.int32).reshape(4, 2)
    specs = [
        mb.TensorSpec(shape=x.shape, dtype=types.int32),
        mb.TensorSpec(shape=y.shape, dtype=types.int32),
    ]

    @mb.program(input_specs=specs, opset_version=ct.target.iOS15)
    def prog(x: Any, y: Any) -> Any:
        return mb.matmul(x=x, y=y)

    got = run1(prog, x=x, y=y)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, x.astype(np.int64) @ y.astype(np.int64))

    xf = rand(3, 4, dtype=np.float16)
    yw = rand(4, 2, seed=9)  # fp32 const on an fp16 x: allowed from iOS17

    @mb.program(
        input_specs=[mb.TensorSpec(shape=xf.shape, dtype=types.fp16)], opset_version=ct.target.iOS17
    )
    def mixed(x: Any) -> Any:
        return mb.matmul(x=x, y=yw)

    _check(run1(mixed, x=xf), xf.astype(np.float64) @ yw.astype(np.float64), np.float16)


def test_fp16_matmul_accumulates_wide() -> None:
    """A long fp16 dot product: rounding each partial sum would drift; we round once."""
    x = np.full((1, 4096), 1.0, np.float16)
    y = np.full((4096, 1), 0.5, np.float16)
    specs = [
        mb.TensorSpec(shape=x.shape, dtype=types.fp16),
        mb.TensorSpec(shape=y.shape, dtype=types.fp16),
    ]

    @mb.program(input_specs=specs, opset_version=ct.target.iOS15)
    def prog(x: Any, y: Any) -> Any:
        return mb.matmul(x=x, y=y)

    np.testing.assert_array_equal(run1(prog, x=x, y=y), [[2048.0]])


EINSUM = [
    ("nchw,nwhu->nchu", (2, 3, 4, 5), (2, 5, 4, 6)),
    ("nchw,nwhu->nchu", (1, 3, 4, 5), (2, 5, 1, 6)),  # broadcast of n and h
    ("abcd,adce->abce", (2, 3, 4, 5), (2, 5, 4, 6)),  # relabeled
    ("chw,whr->chr", (3, 4, 5), (5, 4, 2)),
    ("chw,whr->chr", (3, 1, 5), (5, 4, 2)),  # broadcast of h
]


@pytest.mark.parametrize("mil_dtype,np_dtype", FLOATS, ids=["fp32", "fp16"])
@pytest.mark.parametrize("eq,xs,ys", EINSUM)
def test_einsum(eq: str, xs: Any, ys: Any, mil_dtype: Any, np_dtype: Any) -> None:
    x = rand(*xs, dtype=np_dtype, seed=1)
    y = rand(*ys, dtype=np_dtype, seed=2)
    specs = [mb.TensorSpec(shape=xs, dtype=mil_dtype), mb.TensorSpec(shape=ys, dtype=mil_dtype)]

    @mb.program(input_specs=specs, opset_version=ct.target.iOS15)
    def prog(x: Any, y: Any) -> Any:
        return mb.einsum(values=(x, y), equation=eq)

    # Reference: explicit broadcasting of the size-1 batch axes, then float64 einsum.
    lhs = eq.split("->")[0].split(",")
    sizes: dict[str, int] = {}
    for term, shape in zip(lhs, (xs, ys)):
        for label, n in zip(term, shape):
            sizes[label] = max(sizes.get(label, 1), n)
    a = np.broadcast_to(x.astype(np.float64), [sizes[c] for c in lhs[0]])
    b = np.broadcast_to(y.astype(np.float64), [sizes[c] for c in lhs[1]])
    _check(run1(prog, x=x, y=y), np.einsum(eq, a, b), np_dtype)
