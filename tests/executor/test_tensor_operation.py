"""Executor kernels of MIL tensor_operation ops against numpy / PyTorch semantics."""

from __future__ import annotations

import coremltools as ct
import numpy as np
import pytest
import torch
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

from tests.executor.support import rand, run, run1, tol

FLOATS = [(np.float32, types.fp32), (np.float16, types.fp16)]


def spec(shape: tuple[int, ...], dtype: object = types.fp32) -> object:
    return mb.TensorSpec(shape=shape, dtype=dtype)


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
@pytest.mark.parametrize("lower,upper", [(-1, -1), (0, -1), (-1, 0), (0, 0), (1, 2)])
def test_band_part(np_dt: type, mil_dt: object, lower: int, upper: int) -> None:
    @mb.program(input_specs=[spec((2, 4, 5), mil_dt)], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.band_part(x=x, lower=lower, upper=upper)

    x = rand(2, 4, 5, dtype=np_dt)
    t = torch.from_numpy(x.astype(np.float32))
    ref = t
    if lower >= 0:
        ref = torch.triu(ref, diagonal=-lower)
    if upper >= 0:
        ref = torch.tril(ref, diagonal=upper)
    out = run1(prog, x=x)
    assert out.dtype == np_dt
    np.testing.assert_array_equal(out, ref.numpy().astype(np_dt))


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_cumsum(np_dt: type, mil_dt: object, axis: int, exclusive: bool, reverse: bool) -> None:
    @mb.program(input_specs=[spec((3, 4), mil_dt)], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.cumsum(x=x, axis=axis, exclusive=exclusive, reverse=reverse)

    x = rand(3, 4, dtype=np_dt)
    x64 = x.astype(np.float64)
    n = x.shape[axis]
    idx = np.arange(n)
    # out[i] = sum of x[j] for j in a window chosen by the flags (written as a mask matrix).
    if reverse:
        mask = idx[None, :] > idx[:, None] if exclusive else idx[None, :] >= idx[:, None]
    else:
        mask = idx[None, :] < idx[:, None] if exclusive else idx[None, :] <= idx[:, None]
    ref = np.moveaxis(np.tensordot(mask.astype(np.float64), np.moveaxis(x64, axis, 0), axes=1), 0, axis)
    out = run1(prog, x=x)
    assert out.dtype == np_dt
    np.testing.assert_allclose(out, ref, **tol(np_dt))


def test_cumsum_int32() -> None:
    @mb.program(input_specs=[spec((5,), types.int32)], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.cumsum(x=x, axis=0)

    x = np.array([1, -2, 3, 4, 5], dtype=np.int32)
    np.testing.assert_array_equal(run1(prog, x=x), torch.cumsum(torch.from_numpy(x), 0).numpy())


def test_fill_and_fill_like() -> None:
    @mb.program(input_specs=[spec((2, 3))], opset_version=ct.target.iOS16)
    def prog(x):
        s = mb.shape(x=x)
        return mb.fill(shape=s, value=2.5), mb.fill_like(ref_tensor=x, value=np.int32(7)), mb.fill_like(ref_tensor=x)

    a, b, c = run(prog, x=rand(2, 3))
    np.testing.assert_array_equal(a, np.full((2, 3), 2.5, np.float32))
    assert b.dtype == np.int32
    np.testing.assert_array_equal(b, np.full((2, 3), 7, np.int32))
    np.testing.assert_array_equal(c, np.zeros((2, 3), np.float32))


def test_fill_from_runtime_shape() -> None:
    @mb.program(input_specs=[spec((3,), types.int32)], opset_version=ct.target.iOS15)
    def prog(s):
        return mb.fill(shape=s, value=np.float32(-1.0))

    out = run1(prog, s=np.array([2, 0, 3], np.int32))
    assert out.shape == (2, 0, 3)


def _ref_nms(boxes, scores, iou_thr, score_thr, max_boxes, per_class):
    """torchvision-free greedy NMS reference written from the MIL doc, using torch ops."""
    b = torch.from_numpy(boxes.astype(np.float64))
    corners = torch.cat([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], dim=1)
    best, cls = torch.from_numpy(scores.astype(np.float64)).max(dim=1)
    order = [int(i) for i in torch.argsort(-best, stable=True) if best[i] > score_thr]
    keep: list[int] = []
    for i in order:
        ok = True
        for j in keep:
            if per_class and cls[i] != cls[j]:
                continue
            lt = torch.maximum(corners[i, :2], corners[j, :2])
            rb = torch.minimum(corners[i, 2:], corners[j, 2:])
            inter = torch.clamp(rb - lt, min=0).prod()
            union = b[i, 2] * b[i, 3] + b[j, 2] * b[j, 3] - inter
            if inter / union > iou_thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep[:max_boxes]


def _nms_inputs(seed: int, n_box: int = 12, k: int = 3):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(0, 4, size=(2, n_box, 2))
    sizes = rng.uniform(0.5, 2.0, size=(2, n_box, 2))
    boxes = np.concatenate([centers, sizes], axis=-1).astype(np.float32)
    scores = rng.uniform(0, 1, size=(2, n_box, k)).astype(np.float32)
    return boxes, scores


@pytest.mark.parametrize("per_class", [False, True])
@pytest.mark.parametrize("max_boxes", [3, 20])
def test_nms_ios15(per_class: bool, max_boxes: int) -> None:
    boxes, scores = _nms_inputs(1)

    @mb.program(input_specs=[spec(boxes.shape), spec(scores.shape)], opset_version=ct.target.iOS15)
    def prog(boxes, scores):
        return mb.non_maximum_suppression(
            boxes=boxes, scores=scores, iou_threshold=0.3, score_threshold=0.2,
            max_boxes=max_boxes, per_class_suppression=per_class,
        )

    ob, os_, oi, on = run(prog, boxes=boxes, scores=scores)
    assert ob.shape == (2, max_boxes, 4) and oi.dtype == np.int32
    for b in range(2):
        keep = _ref_nms(boxes[b], scores[b], 0.3, 0.2, max_boxes, per_class)
        n = len(keep)
        assert on[b] == n
        np.testing.assert_array_equal(oi[b, :n], keep)
        np.testing.assert_array_equal(oi[b, n:], -1)
        np.testing.assert_array_equal(ob[b, :n], boxes[b, keep])
        np.testing.assert_array_equal(os_[b, :n], scores[b, keep])
        np.testing.assert_array_equal(ob[b, n:], 0)


def test_nms_ios17_layout() -> None:
    boxes, scores = _nms_inputs(2)
    bt, st = np.ascontiguousarray(boxes.transpose(0, 2, 1)), np.ascontiguousarray(scores.transpose(0, 2, 1))

    @mb.program(input_specs=[spec(bt.shape), spec(st.shape)], opset_version=ct.target.iOS17)
    def prog(boxes, scores):
        return mb.non_maximum_suppression(boxes=boxes, scores=scores, iou_threshold=0.4, max_boxes=5)

    ob, os_, oi = run(prog, boxes=bt, scores=st)
    assert ob.shape == (2, 4, 5) and os_.shape == (2, 3, 5)
    for b in range(2):
        keep = _ref_nms(boxes[b], scores[b], 0.4, -np.inf, 5, False)
        np.testing.assert_array_equal(oi[b, : len(keep)], keep)
        np.testing.assert_array_equal(ob[b, :, : len(keep)], bt[b][:, keep])
        np.testing.assert_array_equal(os_[b, :, : len(keep)], st[b][:, keep])


@pytest.mark.parametrize("dt", [(np.float32, types.fp32), (np.int32, types.int32), (np.bool_, types.bool)])
def test_non_zero(dt: tuple) -> None:
    @mb.program(input_specs=[spec((3, 4), dt[1])], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.non_zero(x=x)

    x = (np.random.default_rng(0).integers(0, 3, size=(3, 4)) * (np.arange(4) % 2)).astype(dt[0])
    out = run1(prog, x=x)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, torch.nonzero(torch.from_numpy(x.astype(np.int64))).numpy())


def test_non_zero_all_zero() -> None:
    @mb.program(input_specs=[spec((2, 2))], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.non_zero(x=x)

    assert run1(prog, x=np.zeros((2, 2), np.float32)).shape == (0, 2)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_one_hot(axis: int) -> None:
    @mb.program(input_specs=[spec((2, 3), types.int32)], opset_version=ct.target.iOS15)
    def prog(i):
        return mb.one_hot(indices=i, one_hot_vector_size=4, axis=axis, on_value=5.0, off_value=-1.0)

    ind = np.array([[0, 3, 1], [2, 2, 0]], np.int32)
    ref = torch.nn.functional.one_hot(torch.from_numpy(ind).long(), 4).numpy()  # class axis last
    ref = np.moveaxis(ref, -1, axis if axis >= 0 else ref.ndim + axis)
    np.testing.assert_array_equal(run1(prog, i=ind), np.where(ref == 1, 5.0, -1.0).astype(np.float32))


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
@pytest.mark.parametrize("mode,torch_mode", [("constant", "constant"), ("reflect", "reflect"), ("replicate", "replicate")])
def test_pad(np_dt: type, mil_dt: object, mode: str, torch_mode: str) -> None:
    @mb.program(input_specs=[spec((1, 2, 4, 5), mil_dt)], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.pad(x=x, pad=np.array([1, 2, 3, 1], np.int32), mode=mode, constant_val=np_dt(1.5))

    x = rand(1, 2, 4, 5, dtype=np_dt)
    kwargs = {"value": 1.5} if mode == "constant" else {}
    # torch pads the last dim first: (left, right, top, bottom)
    ref = torch.nn.functional.pad(torch.from_numpy(x.astype(np.float32)), (3, 1, 1, 2), mode=torch_mode, **kwargs)
    out = run1(prog, x=x)
    assert out.dtype == np_dt
    np.testing.assert_array_equal(out, ref.numpy().astype(np_dt))


def test_pad_all_dims_runtime() -> None:
    @mb.program(input_specs=[spec((2, 3)), spec((4,), types.int32)], opset_version=ct.target.iOS15)
    def prog(x, p):
        return mb.pad(x=x, pad=p)

    x = rand(2, 3)
    out = run1(prog, x=x, p=np.array([1, 0, 0, 2], np.int32))
    np.testing.assert_array_equal(out, np.pad(x, [(1, 0), (0, 2)]))


@pytest.mark.parametrize("start,end,step", [(0, 10, 3), (5, -2, -2), (1, 1, 1), (0.5, 3.0, 0.75)])
def test_range_1d(start: float, end: float, step: float) -> None:
    is_int = isinstance(start, int)
    dt = np.int32 if is_int else np.float32

    @mb.program(input_specs=[spec((1,))], opset_version=ct.target.iOS15)
    def prog(x):
        # range_1d's inputs are consts here: the op stays in the program and the executor runs it.
        return mb.range_1d(start=dt(start), end=dt(end), step=dt(step))

    out = run1(prog, x=np.zeros(1, np.float32))
    ref = torch.arange(start, end, step, dtype=torch.float64).numpy()
    assert out.dtype == dt
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("reps", [(1, 1), (2, 3), (3, 1)])
def test_tile(reps: tuple[int, int]) -> None:
    @mb.program(input_specs=[spec((2, 3), types.int32)], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.tile(x=x, reps=reps)

    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    np.testing.assert_array_equal(run1(prog, x=x), torch.from_numpy(x).repeat(*reps).numpy())


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS + [(np.int32, types.int32)])
@pytest.mark.parametrize("ascending", [False, True])
@pytest.mark.parametrize("axis", [-1, 0])
def test_argsort(np_dt: type, mil_dt: object, ascending: bool, axis: int) -> None:
    @mb.program(input_specs=[spec((4, 6), mil_dt)], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.argsort(x=x, axis=axis, ascending=ascending)

    x = np.random.default_rng(3).integers(-3, 3, size=(4, 6)).astype(np_dt)  # many ties
    ref = torch.argsort(torch.from_numpy(x.astype(np.float32)), dim=axis, descending=not ascending, stable=True)
    out = run1(prog, x=x)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, ref.numpy())


def _torch_topk(x: np.ndarray, k: int, axis: int, ascending: bool) -> tuple[np.ndarray, np.ndarray]:
    t = torch.from_numpy(x.astype(np.float32))
    v, i = torch.sort(t, dim=axis, descending=not ascending, stable=True)
    return v.narrow(axis, 0, k).numpy().astype(x.dtype), i.narrow(axis, 0, k).numpy()


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
@pytest.mark.parametrize("ascending", [False, True])
@pytest.mark.parametrize("axis", [-1, 0])
def test_topk_ios15(np_dt: type, mil_dt: object, ascending: bool, axis: int) -> None:
    @mb.program(input_specs=[spec((5, 6), mil_dt)], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.topk(x=x, k=3, axis=axis, ascending=ascending)

    x = rand(5, 6, dtype=np_dt)
    v, i = run(prog, x=x)
    rv, ri = _torch_topk(x, 3, axis, ascending)
    assert v.dtype == np_dt and i.dtype == np.int32
    np.testing.assert_array_equal(v, rv)
    np.testing.assert_array_equal(i, ri)


def test_topk_ios16_values_only_and_ties() -> None:
    @mb.program(input_specs=[spec((2, 6))], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.topk(x=x, k=4, return_indices=False)

    x = np.array([[1, 3, 3, 0, 3, 2], [5, 5, 5, 5, 5, 5]], np.float32)
    np.testing.assert_array_equal(run1(prog, x=x), _torch_topk(x, 4, -1, False)[0])


@pytest.mark.parametrize("idx_dtype,np_idx", [("int32", np.int32), ("uint16", np.uint16)])
def test_topk_ios17_all_and_index_dtype(idx_dtype: str, np_idx: type) -> None:
    @mb.program(input_specs=[spec((3, 5))], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.topk(x=x, k=-1, ascending=True, output_indices_dtype=idx_dtype)

    x = rand(3, 5)
    v, i = run(prog, x=x)
    rv, ri = _torch_topk(x, 5, -1, True)
    assert i.dtype == np_idx
    np.testing.assert_array_equal(v, rv)
    np.testing.assert_array_equal(i, ri)


@pytest.mark.parametrize("shape,axis", [((3,), -1), ((3,), 1), ((4, 3), -1), ((2, 3, 2), -1), ((5, 5, 2), 1), ((2, 3, 4), 0)])
def test_flatten2d(shape: tuple[int, ...], axis: int) -> None:
    @mb.program(input_specs=[spec(shape)], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.flatten2d(x=x, axis=axis)

    x = rand(*shape)
    a = axis + len(shape) if axis < 0 else axis
    ref = torch.from_numpy(x).reshape(int(np.prod(shape[:a])), -1).numpy()
    np.testing.assert_array_equal(run1(prog, x=x), ref)


def test_shape_values() -> None:
    @mb.program(input_specs=[spec((2, 3, 4))], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.shape(x=x), mb.shape(x=np.int32(3))

    a, b = run(prog, x=rand(2, 3, 4))
    assert a.dtype == np.int32
    np.testing.assert_array_equal(a, [2, 3, 4])
    assert b.shape == (0,)


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat(np_dt: type, mil_dt: object, axis: int) -> None:
    @mb.program(input_specs=[spec((2, 3), mil_dt), spec((2, 3), mil_dt)], opset_version=ct.target.iOS15)
    def prog(a, b):
        return mb.concat(values=[a, b, a], axis=axis), mb.concat(values=[a, b], axis=axis, interleave=True)

    a, b = rand(2, 3, dtype=np_dt), rand(2, 3, dtype=np_dt, seed=1)
    plain, inter = run(prog, a=a, b=b)
    ta, tb = torch.from_numpy(a.astype(np.float32)), torch.from_numpy(b.astype(np.float32))
    np.testing.assert_array_equal(plain, torch.cat([ta, tb, ta], dim=axis).numpy().astype(np_dt))
    # interleave: output slice 2i along axis is a's slice i, slice 2i+1 is b's slice i
    ax = axis % 2
    ref = torch.stack([ta, tb], dim=ax + 1).flatten(ax, ax + 1)
    assert plain.dtype == np_dt
    np.testing.assert_array_equal(inter, ref.numpy().astype(np_dt))


def test_concat_with_empty() -> None:
    @mb.program(input_specs=[spec((2, 0)), spec((2, 3))], opset_version=ct.target.iOS15)
    def prog(a, b):
        return mb.concat(values=[a, b], axis=1)

    b = rand(2, 3)
    np.testing.assert_array_equal(run1(prog, a=np.zeros((2, 0), np.float32), b=b), b)


def test_split() -> None:
    @mb.program(input_specs=[spec((6, 4))], opset_version=ct.target.iOS15)
    def prog(x):
        even = mb.split(x=x, num_splits=3, axis=0)
        uneven = mb.split(x=x, split_sizes=[1, 3], axis=-1)
        return (*even, *uneven)

    x = rand(6, 4)
    outs = run(prog, x=x)
    refs = list(torch.from_numpy(x).split(2, dim=0)) + list(torch.from_numpy(x).split([1, 3], dim=-1))
    assert len(outs) == 5
    for o, r in zip(outs, refs):
        np.testing.assert_array_equal(o, r.numpy())


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_stack(axis: int) -> None:
    @mb.program(input_specs=[spec((2, 3), types.int32), spec((2, 3), types.int32)], opset_version=ct.target.iOS15)
    def prog(a, b):
        return mb.stack(values=[a, b], axis=axis)

    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    b = -a
    ref = torch.stack([torch.from_numpy(a), torch.from_numpy(b)], dim=axis).numpy()
    np.testing.assert_array_equal(run1(prog, a=a, b=b), ref)
