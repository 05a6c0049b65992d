"""Control-flow and list kernels (cond, while_loop, select, identity, list ops) vs numpy."""

from __future__ import annotations

import coremltools as ct
import numpy as np
import pytest
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

from pipeline.errors import ExecutorError
from tests.executor.support import rand, run, run1, tol

IOS17 = ct.target.iOS17
FLOATS = [(np.float32, types.fp32), (np.float16, types.fp16)]


@pytest.mark.parametrize("np_dtype,mil_dtype", FLOATS)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cond_takes_the_branch_of_pred(np_dtype, mil_dtype, sign):
    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3), dtype=mil_dtype)], opset_version=IOS17)
    def prog(x):
        pred = mb.greater(x=mb.reduce_sum(x=x), y=np_dtype(0))
        return mb.cond(
            pred=pred,
            _true_fn=lambda: mb.mul(x=x, y=np_dtype(2)),
            _false_fn=lambda: mb.sub(x=x, y=np_dtype(1)),
        )

    x = (np.abs(rand(2, 3)) * sign).astype(np_dtype)
    got = run1(prog, x=x)
    expected = x * np_dtype(2) if x.sum() > 0 else x - np_dtype(1)
    assert got.dtype == np_dtype
    np.testing.assert_allclose(got, expected, **tol(np_dtype))


def test_cond_with_several_outputs():
    @mb.program(input_specs=[mb.TensorSpec(shape=(4,)), mb.TensorSpec(shape=(1,), dtype=types.bool)])
    def prog(x, flag):
        pred = mb.squeeze(x=flag)
        return mb.cond(
            pred=pred,
            _true_fn=lambda: (mb.exp(x=x), mb.add(x=x, y=1.0)),
            _false_fn=lambda: (mb.mul(x=x, y=-1.0), mb.add(x=x, y=2.0)),
        )

    x = rand(4)
    a, b = run(prog, x=x, flag=np.array([True]))
    np.testing.assert_allclose(a, np.exp(x), **tol(np.float32))
    np.testing.assert_allclose(b, x + 1, **tol(np.float32))
    a, b = run(prog, x=x, flag=np.array([False]))
    np.testing.assert_allclose(a, -x, **tol(np.float32))
    np.testing.assert_allclose(b, x + 2, **tol(np.float32))


def _doubling_loop(np_dtype, mil_dtype):
    @mb.program(
        input_specs=[mb.TensorSpec(shape=(2, 3), dtype=mil_dtype),
                     mb.TensorSpec(shape=(1,), dtype=types.int32)],
        opset_version=IOS17,
    )
    def prog(x, n):
        limit = mb.squeeze(x=n)

        def body(i, acc):
            return mb.add(x=i, y=1), mb.mul(x=acc, y=np_dtype(2))

        def cnd(i, acc):
            return mb.less(x=i, y=limit)

        return mb.while_loop(_cond=cnd, _body=body, loop_vars=(np.int32(0), x))

    return prog


@pytest.mark.parametrize("np_dtype,mil_dtype", FLOATS)
@pytest.mark.parametrize("n", [0, 1, 5])
def test_while_loop_runs_body_while_cond_holds(np_dtype, mil_dtype, n):
    x = rand(2, 3, dtype=np_dtype)
    i, acc = run(_doubling_loop(np_dtype, mil_dtype), x=x, n=np.array([n], np.int32))
    assert int(i) == n and i.dtype == np.int32
    assert acc.dtype == np_dtype
    np.testing.assert_allclose(acc, x * np_dtype(2.0**n), **tol(np_dtype))


def test_while_loop_with_cond_inside_body():
    # Collatz steps of 6: 6 3 10 5 16 8 4 2 1 -> 8 steps.
    @mb.program(input_specs=[mb.TensorSpec(shape=(1,), dtype=types.int32)], opset_version=IOS17)
    def prog(start):
        def body(v, steps):
            even = mb.equal(x=mb.mod(x=v, y=2), y=0)
            nxt = mb.cond(
                pred=even,
                _true_fn=lambda: mb.floor_div(x=v, y=2),
                _false_fn=lambda: mb.add(x=mb.mul(x=v, y=3), y=1),
            )
            return nxt, mb.add(x=steps, y=1)

        def cnd(v, steps):
            return mb.greater(x=v, y=1)

        return mb.while_loop(_cond=cnd, _body=body, loop_vars=(mb.squeeze(x=start), np.int32(0)))

    def collatz(v: int) -> int:
        steps = 0
        while v > 1:
            v = v // 2 if v % 2 == 0 else 3 * v + 1
            steps += 1
        return steps

    for start in (1, 6, 27):
        v, steps = run(prog, start=np.array([start], np.int32))
        assert int(v) == 1 and int(steps) == collatz(start)


@pytest.mark.parametrize(
    "np_dtype,mil_dtype",
    FLOATS + [(np.int32, types.int32)],
)
def test_select_broadcasts_cond_a_b(np_dtype, mil_dtype):
    @mb.program(input_specs=[
        mb.TensorSpec(shape=(3, 1), dtype=types.bool),
        mb.TensorSpec(shape=(1, 4), dtype=mil_dtype),
        mb.TensorSpec(shape=(3, 4), dtype=mil_dtype),
    ])
    def prog(c, a, b):
        return mb.select(cond=c, a=a, b=b)

    c = np.array([[True], [False], [True]])
    a = (rand(1, 4, seed=1) * 10).astype(np_dtype)
    b = (rand(3, 4, seed=2) * 10).astype(np_dtype)
    got = run1(prog, c=c, a=a, b=b)
    assert got.dtype == np_dtype and got.shape == (3, 4)
    np.testing.assert_array_equal(got, np.where(c, a, b))


def test_select_with_empty_tensors():
    @mb.program(input_specs=[
        mb.TensorSpec(shape=(0, 3), dtype=types.bool),
        mb.TensorSpec(shape=(0, 3)),
        mb.TensorSpec(shape=(1, 3)),
    ])
    def prog(c, a, b):
        return mb.select(cond=c, a=a, b=b)

    got = run1(prog, c=np.zeros((0, 3), bool), a=np.zeros((0, 3), np.float32), b=rand(1, 3))
    assert got.shape == (0, 3)


@pytest.mark.parametrize(
    "np_dtype,mil_dtype", FLOATS + [(np.int32, types.int32), (np.bool_, types.bool)]
)
def test_identity_returns_its_input(np_dtype, mil_dtype):
    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 5), dtype=mil_dtype)])
    def prog(x):
        return mb.identity(x=x)

    x = (rand(2, 5) > 0) if np_dtype is np.bool_ else (rand(2, 5) * 9).astype(np_dtype)
    got = run1(prog, x=x)
    assert got.dtype == np_dtype
    np.testing.assert_array_equal(got, x)


# -- lists ----------------------------------------------------------------------------------
def test_list_write_read_length_gather():
    @mb.program(input_specs=[mb.TensorSpec(shape=(3, 4))], opset_version=IOS17)
    def prog(x):
        ls = mb.make_list(init_length=1, elem_shape=[mb.const(val=4)], dtype="fp32",
                          dynamic_length=True)
        rows = mb.split(x=x, num_splits=3, axis=0)
        for k, row in enumerate(rows):
            ls = mb.list_write(ls=ls, index=2 - k, value=mb.squeeze(x=row, axes=[0]))
        return (
            mb.list_length(ls=ls),
            mb.list_read(ls=ls, index=0),
            mb.list_gather(ls=ls, indices=[1, 0, 2, 0]),
        )

    x = rand(3, 4)
    length, first, gathered = run(prog, x=x)
    assert int(length) == 3
    np.testing.assert_array_equal(first, x[2])
    np.testing.assert_array_equal(gathered, x[::-1][[1, 0, 2, 0]])


def test_list_scatter_and_unwritten_elements_read_as_zero():
    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3), dtype=types.fp16)], opset_version=IOS17)
    def prog(x):
        ls = mb.make_list(init_length=4, elem_shape=[mb.const(val=3)], dtype="fp16",
                          dynamic_length=False)
        ls = mb.list_scatter(ls=ls, indices=[3, 1], value=x)
        return mb.list_gather(ls=ls, indices=[0, 1, 2, 3]), mb.list_length(ls=ls)

    x = rand(2, 3, dtype=np.float16)
    gathered, length = run(prog, x=x)
    expected = np.zeros((4, 3), np.float16)
    expected[[3, 1]] = x
    assert gathered.dtype == np.float16 and int(length) == 4
    np.testing.assert_array_equal(gathered, expected)


def test_list_as_while_loop_carry_accumulates_like_a_tensor_array():
    @mb.program(input_specs=[mb.TensorSpec(shape=(5, 2))], opset_version=IOS17)
    def prog(x):
        ls = mb.make_list(init_length=1, elem_shape=[mb.const(val=2)], dtype="fp32")

        def body(i, acc, out):
            row = mb.gather(x=x, indices=i, axis=0)
            acc = mb.add(x=acc, y=row)
            return mb.add(x=i, y=1), acc, mb.list_write(ls=out, index=i, value=acc)

        def cnd(i, acc, out):
            return mb.less(x=i, y=5)

        _, _, out = mb.while_loop(
            _cond=cnd, _body=body, loop_vars=(np.int32(0), np.zeros(2, np.float32), ls)
        )
        return mb.list_gather(ls=out, indices=np.arange(5, dtype=np.int32))

    x = rand(5, 2)
    np.testing.assert_allclose(run1(prog, x=x), np.cumsum(x, axis=0), **tol(np.float32))


def test_list_gather_of_no_indices_is_empty():
    @mb.program(input_specs=[mb.TensorSpec(shape=(3,))], opset_version=IOS17)
    def prog(x):
        ls = mb.make_list(init_length=2, elem_shape=[mb.const(val=3)], dtype="fp32")
        ls = mb.list_write(ls=ls, index=0, value=x)
        empty = mb.slice_by_size(x=np.array([0], np.int32), begin=[0], size=[0])
        return mb.list_gather(ls=ls, indices=empty)

    got = run1(prog, x=rand(3))
    assert got.shape == (0, 3) and got.dtype == np.float32


def test_fixed_length_list_refuses_a_write_past_its_end():
    @mb.program(input_specs=[mb.TensorSpec(shape=(3,))], opset_version=IOS17)
    def prog(x):
        ls = mb.make_list(init_length=2, elem_shape=[mb.const(val=3)], dtype="fp32",
                          dynamic_length=False)
        ls = mb.list_write(ls=ls, index=2, value=x)
        return mb.list_length(ls=ls)

    with pytest.raises(ExecutorError, match="list_write.*out of range"):
        run(prog, x=rand(3))
