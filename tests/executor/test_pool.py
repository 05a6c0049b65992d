"""Executor kernels of MIL pooling ops against PyTorch pooling and a numpy window loop."""

from __future__ import annotations

import itertools
import math

import coremltools as ct
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

from tests.executor.support import rand, run, run1, tol

FLOATS = [(np.float32, types.fp32), (np.float16, types.fp16)]
MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def spec(shape: tuple[int, ...], dtype: object = types.fp32) -> object:
    return mb.TensorSpec(shape=shape, dtype=dtype)


def close(out: np.ndarray, ref: np.ndarray, np_dt: type) -> None:
    assert out.dtype == np_dt and out.shape == ref.shape
    np.testing.assert_allclose(
        out.astype(np.float32), ref.astype(np_dt).astype(np.float32), **tol(np_dt)
    )


def window_loop(x: np.ndarray, k, s, pads, reduce: str, exclude: bool) -> np.ndarray:
    """Direct definition: every output takes its window over the padded input (numpy loop)."""
    sizes = x.shape[2:]
    outs = [(d + pb + pa - kk) // ss + 1 for d, kk, ss, (pb, pa) in zip(sizes, k, s, pads)]
    ref = np.zeros(x.shape[:2] + tuple(outs), np.float64)
    for o in itertools.product(*[range(n) for n in outs]):
        lo = [oi * ss - pb for oi, ss, (pb, _) in zip(o, s, pads)]
        real = tuple(slice(max(0, l_), min(d, l_ + kk)) for l_, kk, d in zip(lo, k, sizes))
        win = x[(slice(None), slice(None), *real)].astype(np.float64)
        flat = win.reshape(*x.shape[:2], -1)
        if reduce == "max":
            val = flat.max(-1)
        elif reduce == "l2":
            val = np.sqrt((flat**2).sum(-1))
        else:
            count = flat.shape[-1] if exclude else math.prod(k)
            val = flat.sum(-1) / count
        ref[(slice(None), slice(None), *o)] = val
    return ref


def same_pads(sizes, k, s, lower=False):
    pads = []
    for d, kk, ss in zip(sizes, k, s):
        total = max((math.ceil(d / ss) - 1) * ss + kk - d, 0)
        pads.append((total - total // 2, total // 2) if lower else (total // 2, total - total // 2))
    return pads


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
# MIL's op definition allows ceil_mode only for 1-D and 2-D pooling.
@pytest.mark.parametrize(
    "rank,ceil_mode", [(1, False), (1, True), (2, False), (2, True), (3, False)]
)
def test_max_and_avg_pool_custom_symmetric_match_torch(np_dt, mil_dt, rank, ceil_mode) -> None:
    sizes = (7, 6, 5)[:rank]
    k, s, p = (3, 2, 3)[:rank], (2, 2, 1)[:rank], (1, 1, 0)[:rank]
    pad = [v for pp in p for v in (pp, pp)]
    xs = (2, 3, *sizes)

    @mb.program(input_specs=[spec(xs, mil_dt)], opset_version=ct.target.iOS17)
    def prog(x):
        common = {
            "kernel_sizes": k,
            "strides": s,
            "pad_type": "custom",
            "pad": pad,
            "ceil_mode": ceil_mode,
        }
        return (
            mb.max_pool(x=x, **common),
            mb.avg_pool(x=x, exclude_padding_from_average=False, **common),
            mb.avg_pool(x=x, exclude_padding_from_average=True, **common),
        )

    x = rand(*xs, dtype=np_dt)
    t = torch.from_numpy(x.astype(np.float32))
    mx, av_in, av_ex = run(prog, x=x)
    close(mx, MAX[rank](t, k, s, p, ceil_mode=ceil_mode).numpy(), np_dt)
    close(av_in, AVG[rank](t, k, s, p, ceil_mode=ceil_mode, count_include_pad=True).numpy(), np_dt)
    close(av_ex, AVG[rank](t, k, s, p, ceil_mode=ceil_mode, count_include_pad=False).numpy(), np_dt)


@pytest.mark.parametrize("pad_type", ["same", "same_lower", "valid"])
@pytest.mark.parametrize("exclude", [False, True])
def test_pools_asymmetric_padding_match_window_loop(pad_type: str, exclude: bool) -> None:
    k, s = (2, 3), (2, 2)

    @mb.program(input_specs=[spec((1, 2, 5, 6))], opset_version=ct.target.iOS17)
    def prog(x):
        return (
            mb.max_pool(x=x, kernel_sizes=k, strides=s, pad_type=pad_type),
            mb.avg_pool(
                x=x,
                kernel_sizes=k,
                strides=s,
                pad_type=pad_type,
                exclude_padding_from_average=exclude,
            ),
            mb.l2_pool(x=x, kernel_sizes=k, strides=s, pad_type=pad_type),
        )

    x = rand(1, 2, 5, 6)
    pads = (
        [(0, 0), (0, 0)]
        if pad_type == "valid"
        else same_pads((5, 6), k, s, pad_type == "same_lower")
    )
    mx, av, l2 = run(prog, x=x)
    close(mx, window_loop(x, k, s, pads, "max", exclude), np.float32)
    close(av, window_loop(x, k, s, pads, "avg", exclude), np.float32)
    close(l2, window_loop(x, k, s, pads, "l2", exclude), np.float32)


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
def test_l2_pool_matches_torch_lp_pool(np_dt, mil_dt) -> None:
    @mb.program(input_specs=[spec((1, 3, 8), mil_dt)], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.l2_pool(x=x, kernel_sizes=[3], strides=[2], pad_type="valid")

    x = rand(1, 3, 8, dtype=np_dt)
    ref = F.lp_pool1d(torch.from_numpy(x.astype(np.float32)), 2, 3, 2).numpy()
    close(run1(prog, x=x), ref, np_dt)


def test_global_max_pool_3d() -> None:
    @mb.program(input_specs=[spec((2, 3, 4, 5, 6))], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.max_pool(x=x, kernel_sizes=[4, 5, 6], strides=[1, 1, 1], pad_type="valid")

    x = rand(2, 3, 4, 5, 6)
    close(run1(prog, x=x), x.max(axis=(2, 3, 4), keepdims=True), np.float32)
