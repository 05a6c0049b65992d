"""Executor kernels of MIL gather/scatter ops against numpy / PyTorch semantics."""

from __future__ import annotations

import coremltools as ct
import numpy as np
import pytest
import torch
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

from pipeline.errors import ExecutorError
from tests.executor.support import rand, run1, tol

FLOATS = [(np.float32, types.fp32), (np.float16, types.fp16)]


def spec(shape: tuple[int, ...], dtype: object = types.fp32) -> object:
    return mb.TensorSpec(shape=shape, dtype=dtype)


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_matches_numpy_take(np_dt: type, mil_dt: object, axis: int) -> None:
    idx = np.array([[2, 0], [1, 1]], np.int32)

    @mb.program(
        input_specs=[spec((3, 4, 3), mil_dt), spec((2, 2), types.int32)],
        opset_version=ct.target.iOS17,
    )
    def prog(x, i):
        return mb.gather(x=x, indices=i, axis=axis)

    x = rand(3, 4, 3, dtype=np_dt)
    out = run1(prog, x=x, i=idx)
    assert out.dtype == np_dt
    np.testing.assert_array_equal(out, np.take(x, idx, axis=axis))


def test_gather_ios15_negative_indices_wrap() -> None:
    @mb.program(input_specs=[spec((5, 2)), spec((3,), types.int32)], opset_version=ct.target.iOS15)
    def prog(x, i):
        return mb.gather(x=x, indices=i, axis=0)

    x = rand(5, 2)
    i = np.array([-1, 0, -5], np.int32)
    np.testing.assert_array_equal(run1(prog, x=x, i=i), x[[4, 0, 0]])


def test_gather_ios17_negative_index_raises() -> None:
    @mb.program(input_specs=[spec((5, 2)), spec((1,), types.int32)], opset_version=ct.target.iOS17)
    def prog(x, i):
        return mb.gather(x=x, indices=i, axis=0)

    with pytest.raises(ExecutorError, match="gather"):
        run1(prog, x=rand(5, 2), i=np.array([-1], np.int32))


@pytest.mark.parametrize("axis,batch_dims", [(1, 1), (2, 1), (2, 2), (-1, 1)])
def test_gather_batch_dims_matches_loop(axis: int, batch_dims: int) -> None:
    xs, ishape = (2, 3, 4, 2), (2, 3, 5) if batch_dims == 2 else (2, 5, 2)
    ax = axis % 4
    idx = np.random.default_rng(3).integers(0, xs[ax], size=ishape).astype(np.int32)

    @mb.program(input_specs=[spec(xs), spec(ishape, types.int32)], opset_version=ct.target.iOS16)
    def prog(x, i):
        return mb.gather(x=x, indices=i, axis=axis, batch_dims=batch_dims)

    x = rand(*xs)
    # Reference from the TF definition: loop over the batch dims, gather each slice.
    bshape = xs[:batch_dims]
    parts = []
    for b in np.ndindex(*bshape):
        parts.append(np.take(x[b], idx[b], axis=ax - batch_dims))
    ref = np.stack(parts).reshape(*bshape, *parts[0].shape)
    np.testing.assert_array_equal(run1(prog, x=x, i=idx), ref)


def test_gather_empty_indices() -> None:
    @mb.program(input_specs=[spec((3, 2)), spec((0,), types.int32)], opset_version=ct.target.iOS17)
    def prog(x, i):
        return mb.gather(x=x, indices=i, axis=0)

    assert run1(prog, x=rand(3, 2), i=np.zeros(0, np.int32)).shape == (0, 2)


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
@pytest.mark.parametrize("axis", [0, -1])
def test_gather_along_axis_matches_torch(np_dt: type, mil_dt: object, axis: int) -> None:
    idx = np.random.default_rng(1).integers(0, 3, size=(3, 3)).astype(np.int32)

    @mb.program(
        input_specs=[spec((3, 3), mil_dt), spec((3, 3), types.int32)], opset_version=ct.target.iOS17
    )
    def prog(x, i):
        return mb.gather_along_axis(x=x, indices=i, axis=axis)

    x = rand(3, 3, dtype=np_dt)
    ref = torch.gather(torch.from_numpy(x.astype(np.float32)), axis, torch.from_numpy(idx).long())
    np.testing.assert_array_equal(run1(prog, x=x, i=idx), ref.numpy().astype(np_dt))


def test_gather_along_axis_ios15_negative() -> None:
    @mb.program(
        input_specs=[spec((2, 3)), spec((2, 1), types.int32)], opset_version=ct.target.iOS15
    )
    def prog(x, i):
        return mb.gather_along_axis(x=x, indices=i, axis=1)

    x = rand(2, 3)
    out = run1(prog, x=x, i=np.array([[-1], [-3]], np.int32))
    np.testing.assert_array_equal(out, np.array([[x[0, 2]], [x[1, 0]]]))


@pytest.mark.parametrize("opset", [ct.target.iOS15, ct.target.iOS17])
def test_gather_nd(opset: object) -> None:
    idx = np.array([[[0, 1], [2, 3]], [[1, 0], [0, 0]]], np.int32)  # [2, 2, 2]

    @mb.program(input_specs=[spec((3, 4, 5)), spec((2, 2, 2), types.int32)], opset_version=opset)
    def prog(x, i):
        return mb.gather_nd(x=x, indices=i)

    x = rand(3, 4, 5)
    ref = x[idx[..., 0], idx[..., 1]]  # [2, 2, 5]
    np.testing.assert_array_equal(run1(prog, x=x, i=idx), ref)


def test_gather_nd_batch_dims() -> None:
    idx = np.array([[[1], [0]], [[2], [2]]], np.int32)  # [2, 2, 1]

    @mb.program(
        input_specs=[spec((2, 3, 4)), spec((2, 2, 1), types.int32)], opset_version=ct.target.iOS16
    )
    def prog(x, i):
        return mb.gather_nd(x=x, indices=i, batch_dims=1)

    x = rand(2, 3, 4)
    ref = np.stack([x[b][idx[b, :, 0]] for b in range(2)])
    np.testing.assert_array_equal(run1(prog, x=x, i=idx), ref)


MODES = {
    "update": lambda d, u: u,
    "add": lambda d, u: d + u,
    "sub": lambda d, u: d - u,
    "mul": lambda d, u: d * u,
    "div": lambda d, u: d / u,
    "max": np.maximum,
    "min": np.minimum,
}


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("axis", [0, 1])
def test_scatter_modes_distinct_indices(np_dt: type, mil_dt: object, mode: str, axis: int) -> None:
    idx = np.array([2, 0], np.int32)
    ushape = (2, 4) if axis == 0 else (3, 2)

    @mb.program(
        input_specs=[spec((3, 4), mil_dt), spec((2,), types.int32), spec(ushape, mil_dt)],
        opset_version=ct.target.iOS17,
    )
    def prog(d, i, u):
        return mb.scatter(data=d, indices=i, updates=u, axis=axis, mode=mode)

    d = rand(3, 4, dtype=np_dt)
    u = rand(*ushape, dtype=np_dt, seed=2, low=0.5, high=2.0)
    ref = d.astype(np.float32).copy()
    for k, j in enumerate(idx):
        sl = (j, slice(None)) if axis == 0 else (slice(None), j)
        usl = (k, slice(None)) if axis == 0 else (slice(None), k)
        ref[sl] = MODES[mode](ref[sl], u.astype(np.float32)[usl])
    out = run1(prog, d=d, i=idx, u=u)
    assert out.dtype == np_dt
    np.testing.assert_allclose(
        out.astype(np.float32), ref.astype(np_dt).astype(np.float32), **tol(np_dt)
    )


def test_scatter_add_accumulates_duplicates_like_torch_index_add() -> None:
    idx = np.array([1, 1, 0], np.int32)

    @mb.program(input_specs=[spec((3, 2)), spec((3, 2))], opset_version=ct.target.iOS15)
    def prog(d, u):
        return mb.scatter(data=d, indices=idx, updates=u, axis=0, mode="add")

    d, u = rand(3, 2), rand(3, 2, seed=1)
    ref = torch.from_numpy(d).index_add(0, torch.from_numpy(idx).long(), torch.from_numpy(u))
    np.testing.assert_allclose(run1(prog, d=d, u=u), ref.numpy(), **tol(np.float32))


def test_scatter_ios15_negative_index() -> None:
    @mb.program(input_specs=[spec((3, 2)), spec((1, 2))], opset_version=ct.target.iOS15)
    def prog(d, u):
        return mb.scatter(data=d, indices=np.array([-1], np.int32), updates=u, mode="update")

    d, u = rand(3, 2), rand(1, 2, seed=1)
    ref = d.copy()
    ref[2] = u[0]
    np.testing.assert_array_equal(run1(prog, d=d, u=u), ref)


@pytest.mark.parametrize("mode", ["update", "add", "max"])
@pytest.mark.parametrize("axis", [0, -1])
def test_scatter_along_axis_matches_torch_scatter(mode: str, axis: int) -> None:
    idx = np.array([[0, 2, 1], [2, 1, 0]], np.int32)  # a permutation per row/col: no duplicates

    dshape = (3, 3) if axis == 0 else (2, 3)

    @mb.program(input_specs=[spec(dshape), spec((2, 3))], opset_version=ct.target.iOS17)
    def prog(d, u):
        return mb.scatter_along_axis(data=d, indices=idx, updates=u, axis=axis, mode=mode)

    d, u = rand(*dshape), rand(2, 3, seed=1)
    td, ti, tu = torch.from_numpy(d), torch.from_numpy(idx).long(), torch.from_numpy(u)
    ax = axis % 2
    if mode == "update":
        ref = td.scatter(ax, ti, tu)
    else:
        ref = td.scatter_reduce(ax, ti, tu, reduce="sum" if mode == "add" else "amax")
    np.testing.assert_allclose(run1(prog, d=d, u=u), ref.numpy(), **tol(np.float32))


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
@pytest.mark.parametrize("mode", ["update", "add", "mul", "min"])
def test_scatter_nd(np_dt: type, mil_dt: object, mode: str) -> None:
    idx = np.array([[0, 1], [2, 0], [0, 1]] if mode != "update" else [[0, 1], [2, 0]], np.int32)

    @mb.program(
        input_specs=[spec((3, 2, 4), mil_dt), spec((len(idx), 4), mil_dt)],
        opset_version=ct.target.iOS17,
    )
    def prog(d, u):
        return mb.scatter_nd(data=d, indices=idx, updates=u, mode=mode)

    d, u = rand(3, 2, 4, dtype=np_dt), rand(len(idx), 4, dtype=np_dt, seed=1)
    ref = d.astype(np.float32).copy()
    for k, (a, b) in enumerate(idx):
        ref[a, b] = MODES[mode](ref[a, b], u.astype(np.float32)[k])
    out = run1(prog, d=d, u=u)
    assert out.dtype == np_dt
    np.testing.assert_allclose(
        out.astype(np.float32), ref.astype(np_dt).astype(np.float32), **tol(np_dt)
    )


def test_scatter_nd_ios17_out_of_bounds_raises() -> None:
    @mb.program(input_specs=[spec((3, 2)), spec((1,), types.int32)], opset_version=ct.target.iOS17)
    def prog(d, i):
        return mb.scatter_nd(
            data=d, indices=mb.expand_dims(x=i, axes=[0]), updates=np.ones((1, 2), np.float32)
        )

    with pytest.raises(ExecutorError, match="scatter_nd"):
        run1(prog, d=rand(3, 2), i=np.array([3], np.int32))
