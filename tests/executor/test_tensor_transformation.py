"""Executor kernels of MIL tensor_transformation ops against numpy / PyTorch semantics."""

from __future__ import annotations

import coremltools as ct
import numpy as np
import pytest
import torch
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

from tests.executor.support import rand, run, run1

FLOATS = [(np.float32, types.fp32), (np.float16, types.fp16)]


def spec(shape: tuple[int, ...], dtype: object = types.fp32) -> object:
    return mb.TensorSpec(shape=shape, dtype=dtype)


def exact(out: np.ndarray, ref: np.ndarray, dtype: type) -> None:
    """Data movement is exact: same dtype, same values."""
    assert out.dtype == dtype
    assert out.shape == ref.shape
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
def test_depth_to_space_matches_tf_dcr(np_dt: type, mil_dt: object) -> None:
    @mb.program(input_specs=[spec((2, 8, 3, 2), mil_dt)], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.depth_to_space(x=x, block_size=2)

    x = rand(2, 8, 3, 2, dtype=np_dt)
    # TF DepthToSpace in NHWC: out[h*b+i, w*b+j, c] = in[h, w, (i*b+j)*C + c].
    nhwc = x.transpose(0, 2, 3, 1)
    n, h, w, _ = nhwc.shape
    ref = np.zeros((n, h * 2, w * 2, 2), dtype=np_dt)
    for i in range(2):
        for j in range(2):
            ref[:, i::2, j::2, :] = nhwc[:, :, :, (i * 2 + j) * 2 : (i * 2 + j) * 2 + 2]
    exact(run1(prog, x=x), ref.transpose(0, 3, 1, 2), np_dt)


def test_space_to_depth_inverts_depth_to_space() -> None:
    @mb.program(input_specs=[spec((1, 3, 4, 6))], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.depth_to_space(x=mb.space_to_depth(x=x, block_size=2), block_size=2)

    x = rand(1, 3, 4, 6)
    exact(run1(prog, x=x), x, np.float32)


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
def test_pixel_shuffle_and_unshuffle_match_torch(np_dt: type, mil_dt: object) -> None:
    @mb.program(input_specs=[spec((2, 18, 2, 3), mil_dt)], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.pixel_shuffle(x=x, upscale_factor=3), mb.pixel_unshuffle(
            x=x, downscale_factor=np.uint32(1)
        )

    x = rand(2, 18, 2, 3, dtype=np_dt)
    ps = torch.nn.functional.pixel_shuffle(torch.from_numpy(x.astype(np.float32)), 3).numpy()
    out = run(prog, x=x)
    exact(out[0], ps.astype(np_dt), np_dt)
    exact(out[1], x, np_dt)


def test_pixel_unshuffle_matches_torch() -> None:
    @mb.program(input_specs=[spec((1, 2, 4, 6))], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.pixel_unshuffle(x=x, downscale_factor=np.uint32(2))

    x = rand(1, 2, 4, 6)
    ref = torch.nn.functional.pixel_unshuffle(torch.from_numpy(x), 2).numpy()
    exact(run1(prog, x=x), ref, np.float32)


def _tf_space_to_batch(x: np.ndarray, block: tuple[int, int], pads: np.ndarray) -> np.ndarray:
    """TF SpaceToBatchND in NHWC, written from its doc with explicit loops."""
    nhwc = np.pad(x.transpose(0, 2, 3, 1), ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))
    n, h, w, c = nhwc.shape
    out = np.zeros((block[0] * block[1] * n, h // block[0], w // block[1], c), dtype=x.dtype)
    for i in range(block[0]):
        for j in range(block[1]):
            for b in range(n):
                out[(i * block[1] + j) * n + b] = nhwc[b, i :: block[0], j :: block[1], :]
    return out.transpose(0, 3, 1, 2)


def test_space_to_batch_and_back() -> None:
    pads = np.array([[1, 1], [0, 2]], dtype=np.int32)

    @mb.program(input_specs=[spec((2, 3, 4, 4))], opset_version=ct.target.iOS17)
    def prog(x):
        s2b = mb.space_to_batch(x=x, block_shape=[2, 3], paddings=pads)
        return s2b, mb.batch_to_space(x=s2b, block_shape=[2, 3], crops=pads)

    x = rand(2, 3, 4, 4)
    s2b, back = run(prog, x=x)
    exact(s2b, _tf_space_to_batch(x, (2, 3), pads), np.float32)
    exact(back, x, np.float32)


@pytest.mark.parametrize(
    "axes,shape", [([0], (1, 2, 3)), ([-1], (2, 3, 1)), ([0, -1, 2], (1, 2, 1, 3, 1))]
)
def test_expand_dims(axes: list[int], shape: tuple[int, ...]) -> None:
    @mb.program(input_specs=[spec((2, 3))], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.expand_dims(x=x, axes=axes)

    x = rand(2, 3)
    exact(run1(prog, x=x), x.reshape(shape), np.float32)


@pytest.mark.parametrize("axes", [None, [1], [-1, 1]])
def test_squeeze(axes: list[int] | None) -> None:
    @mb.program(input_specs=[spec((2, 1, 3, 1))], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.squeeze(x=x) if axes is None else mb.squeeze(x=x, axes=axes)

    x = rand(2, 1, 3, 1)
    ref = x.reshape(2, 3) if axes != [1] else x.reshape(2, 3, 1)
    exact(run1(prog, x=x), ref, np.float32)


def test_squeeze_to_scalar() -> None:
    @mb.program(input_specs=[spec((1, 1))], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.squeeze(x=x)

    assert run1(prog, x=np.array([[2.5]], np.float32)).shape == ()


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
@pytest.mark.parametrize(
    "shape,ref", [([3, 0, -1], (3, 4, 2)), ([-1], (24,)), ([0, 4, 2], (3, 4, 2))]
)
def test_reshape_ios15_zero_and_minus_one(
    np_dt: type, mil_dt: object, shape: list[int], ref: tuple[int, ...]
) -> None:
    @mb.program(input_specs=[spec((3, 4, 2), mil_dt)], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.reshape(x=x, shape=shape)

    x = rand(3, 4, 2, dtype=np_dt)
    exact(run1(prog, x=x), x.reshape(ref), np_dt)


def test_reshape_ios17_zero_counts_from_the_right() -> None:
    # MIL doc example: x [2, 50], shape [1, 0, -1, 0] -> [1, 1, 2, 50] on iOS17.
    @mb.program(input_specs=[spec((2, 50))], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.reshape(x=x, shape=[1, 0, -1, 0])

    x = rand(2, 50)
    exact(run1(prog, x=x), x.reshape(1, 1, 2, 50), np.float32)


def test_reshape_dynamic_shape_and_empty() -> None:
    @mb.program(input_specs=[spec((0, 3)), spec((3,), types.int32)], opset_version=ct.target.iOS17)
    def prog(x, s):
        return mb.reshape(x=x, shape=s)

    # iOS17: the 0 copies x.shape[0] (aligned from the right), which is itself 0.
    out = run1(prog, x=np.zeros((0, 3), np.float32), s=np.array([1, 0, 3], np.int32))
    assert out.shape == (1, 0, 3)


def test_reshape_like() -> None:
    @mb.program(
        input_specs=[spec((6, 5)), spec((2, 3, 4)), spec((1, 5, 1))], opset_version=ct.target.iOS16
    )
    def prog(x, a, b):
        return mb.reshape_like(
            x=x, ref_tensors=(a, b), begins=(0, 1), ends=(2, 0), end_masks=(False, True)
        )

    x = rand(6, 5)
    out = run1(prog, x=x, a=rand(2, 3, 4), b=rand(1, 5, 1))
    exact(out, x.reshape(2, 3, 5, 1), np.float32)


@pytest.mark.parametrize("perm", [[1, 0, 2], [2, 0, 1], [-1, 0, 1]])
def test_transpose(perm: list[int]) -> None:
    @mb.program(input_specs=[spec((2, 3, 4), types.int32)], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.transpose(x=x, perm=perm)

    x = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    exact(run1(prog, x=x), np.transpose(x, [p % 3 for p in perm]), np.int32)


@pytest.mark.parametrize("axes", [None, [0], [-1, 1]])
def test_reverse(axes: list[int] | None) -> None:
    @mb.program(input_specs=[spec((2, 3, 4), types.fp16)], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.reverse(x=x) if axes is None else mb.reverse(x=x, axes=axes)

    x = rand(2, 3, 4, dtype=np.float16)
    ref = x[::-1, ::-1, ::-1] if axes is None else np.flip(x, axis=tuple(axes))
    exact(run1(prog, x=x), ref, np.float16)


@pytest.mark.parametrize("seq_axis,batch_axis", [(1, 0), (0, 1), (-1, 0)])
def test_reverse_sequence_matches_torch_flip_per_row(seq_axis: int, batch_axis: int) -> None:
    shape = [3, 3, 5] if seq_axis == -1 else [3, 3, 2]
    lengths = np.array([0, 2, 3], np.int32)

    @mb.program(input_specs=[spec(tuple(shape))], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.reverse_sequence(x=x, lengths=lengths, seq_axis=seq_axis, batch_axis=batch_axis)

    x = rand(*shape)
    ref = x.copy()
    for b, n in enumerate(lengths):
        src = np.take(x, b, axis=batch_axis)  # drop batch axis
        sa = seq_axis % 3 - (1 if seq_axis % 3 > batch_axis else 0)
        part = np.take(src, np.arange(n)[::-1], axis=sa)
        dst = [slice(None)] * 3
        dst[batch_axis] = b
        idx = [slice(None)] * 2
        idx[sa] = slice(0, n)
        view = ref[tuple(dst)]
        view[tuple(idx)] = part
    exact(run1(prog, x=x), ref, np.float32)


SLICES = [
    # begin, end, stride, begin_mask, end_mask, squeeze_mask, numpy index
    ([0, 1, 0], [2, 3, 4], None, None, None, None, np.s_[0:2, 1:3, 0:4]),
    (
        [-1, 0, 0],
        [0, 3, 4],
        [-1, 1, 2],
        [False, True, False],
        [True, False, False],
        None,
        np.s_[::-1, :3, 0:4:2],
    ),
    ([1, -2, 3], [0, -1, 0], None, None, None, [True, False, True], np.s_[1, -2:-1, 3]),
    ([0, 0, 1], [9, 9, 100], [1, 2, 1], None, None, None, np.s_[0:9, 0:9:2, 1:100]),
    ([0, 2, 0], [2, 2, 4], None, None, None, None, np.s_[0:2, 2:2, 0:4]),  # empty result
]


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
@pytest.mark.parametrize("case", SLICES)
def test_slice_by_index(np_dt: type, mil_dt: object, case: tuple) -> None:
    begin, end, stride, bm, em, sm, index = case
    kw = {
        k: v
        for k, v in (("stride", stride), ("begin_mask", bm), ("end_mask", em), ("squeeze_mask", sm))
        if v is not None
    }

    @mb.program(input_specs=[spec((3, 4, 5), mil_dt)], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.slice_by_index(x=x, begin=begin, end=end, **kw)

    x = rand(3, 4, 5, dtype=np_dt)
    exact(run1(prog, x=x), np.asarray(x[index]), np_dt)


def test_slice_by_index_dynamic_begin() -> None:
    @mb.program(input_specs=[spec((4, 6)), spec((2,), types.int32)], opset_version=ct.target.iOS17)
    def prog(x, b):
        return mb.slice_by_index(x=x, begin=b, end=[4, 6])

    x = rand(4, 6)
    exact(run1(prog, x=x, b=np.array([1, 2], np.int32)), x[1:4, 2:6], np.float32)


@pytest.mark.parametrize(
    "begin,size,index", [([1, 0], [2, -1], np.s_[1:3, 0:]), ([0, 2], [4, 3], np.s_[0:4, 2:5])]
)
def test_slice_by_size(begin: list[int], size: list[int], index: tuple) -> None:
    @mb.program(input_specs=[spec((4, 6))], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.slice_by_size(x=x, begin=begin, size=size)

    x = rand(4, 6)
    exact(run1(prog, x=x), x[index], np.float32)


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
def test_slice_update(np_dt: type, mil_dt: object) -> None:
    @mb.program(
        input_specs=[spec((4, 6), mil_dt), spec((2, 3), mil_dt)], opset_version=ct.target.iOS18
    )
    def prog(x, u):
        return mb.slice_update(x=x, update=u, begin=[1, 0], end=[3, 6], stride=[1, 2])

    x, u = rand(4, 6, dtype=np_dt), rand(2, 3, dtype=np_dt, seed=1)
    ref = x.copy()
    ref[1:3, 0:6:2] = u
    exact(run1(prog, x=x, u=u), ref, np_dt)


def test_slice_update_with_squeeze() -> None:
    @mb.program(input_specs=[spec((3, 4)), spec((4,))], opset_version=ct.target.iOS18)
    def prog(x, u):
        return mb.slice_update(x=x, update=u, begin=[-1, 0], end=[0, 4], squeeze_mask=[True, False])

    x, u = rand(3, 4), rand(4, seed=1)
    ref = x.copy()
    ref[-1] = u
    exact(run1(prog, x=x, u=u), ref, np.float32)


@pytest.mark.parametrize("axis,size,stride", [(1, 3, 1), (-1, 2, 2), (0, 4, 3)])
def test_sliding_windows_matches_torch_unfold(axis: int, size: int, stride: int) -> None:
    @mb.program(input_specs=[spec((7, 5, 6), types.int32)], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.sliding_windows(x=x, axis=axis, size=size, stride=stride)

    x = np.arange(7 * 5 * 6, dtype=np.int32).reshape(7, 5, 6)
    # torch.unfold appends the window dim last; MIL puts it right after ``axis``.
    ref = torch.from_numpy(x).unfold(axis % 3, size, stride).movedim(-1, axis % 3 + 1).numpy()
    exact(run1(prog, x=x), ref, np.int32)
