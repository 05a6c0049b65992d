"""Executor kernels of MIL conv ops against PyTorch convolutions.

References pad explicitly with the TF/ONNX SAME_UPPER rule (extra pad at the end; at the start
for same_lower), written here independently of the kernel, or use torch's own ``padding="same"``.
"""

from __future__ import annotations

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
CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def spec(shape: tuple[int, ...], dtype: object = types.fp32) -> object:
    return mb.TensorSpec(shape=shape, dtype=dtype)


def same_pads(sizes, kernel, strides, dilations, lower=False):
    """TF SAME: total = max((ceil(D/s)-1)*s + (K-1)*d + 1 - D, 0), odd extra at the end."""
    pads = []
    for d_in, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max((math.ceil(d_in / s) - 1) * s + (k - 1) * d + 1 - d_in, 0)
        lo, hi = total // 2, total - total // 2
        pads.append((hi, lo) if lower else (lo, hi))
    return pads


def torch_conv(x, w, b, strides, dilations, groups, pads):
    flat = [p for pair in reversed(pads) for p in pair]
    xt = F.pad(torch.from_numpy(x.astype(np.float32)), flat)
    bt = None if b is None else torch.from_numpy(b.astype(np.float32))
    return CONV[x.ndim - 2](
        xt, torch.from_numpy(w.astype(np.float32)), bt, strides, 0, dilations, groups
    ).numpy()


CASES = [
    # spatial, kernel, strides, dilations, groups, pad_type, custom pad
    ((9,), (3,), (1,), (1,), 1, "valid", None),
    ((10,), (4,), (2,), (1,), 2, "same", None),
    ((7, 6), (3, 3), (1, 1), (1, 1), 1, "same", None),
    ((7, 6), (2, 4), (2, 3), (1, 1), 1, "same", None),
    ((7, 6), (2, 4), (2, 3), (1, 1), 1, "same_lower", None),
    ((8, 8), (3, 3), (1, 2), (2, 1), 4, "custom", [1, 2, 0, 3]),
    ((8, 9), (3, 2), (2, 1), (2, 2), 4, "same", None),
    ((5, 4, 6), (3, 2, 3), (1, 2, 2), (1, 1, 1), 2, "same", None),
    ((5, 4, 6), (2, 2, 2), (1, 1, 1), (1, 1, 1), 1, "custom", [1, 0, 0, 1, 2, 2]),
]


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
@pytest.mark.parametrize("case", CASES)
def test_conv_matches_torch(np_dt, mil_dt, case) -> None:
    sizes, kernel, strides, dil, groups, pad_type, pad = case
    cin, cout = 4, 8
    xs = (2, cin, *sizes)
    w = rand(cout, cin // groups, *kernel, dtype=np_dt, seed=1)
    b = rand(cout, dtype=np_dt, seed=2)
    kw = {"pad": pad} if pad is not None else {}

    @mb.program(input_specs=[spec(xs, mil_dt)], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.conv(
            x=x,
            weight=w,
            bias=b,
            strides=strides,
            pad_type=pad_type,
            dilations=dil,
            groups=groups,
            **kw,
        )

    x = rand(*xs, dtype=np_dt)
    if pad_type == "custom":
        pads = [(pad[2 * i], pad[2 * i + 1]) for i in range(len(sizes))]
    elif pad_type == "valid":
        pads = [(0, 0)] * len(sizes)
    else:
        pads = same_pads(sizes, kernel, strides, dil, lower=pad_type == "same_lower")
    ref = torch_conv(x, w, b, strides, dil, groups, pads)
    out = run1(prog, x=x)
    assert out.dtype == np_dt and out.shape == ref.shape
    np.testing.assert_allclose(
        out.astype(np.float32), ref.astype(np_dt).astype(np.float32), **tol(np_dt)
    )
    if pad_type == "same":
        assert out.shape[2:] == tuple(math.ceil(d / s) for d, s in zip(sizes, strides))


def test_conv_same_stride1_matches_torch_same_padding() -> None:
    w = rand(3, 2, 4, 5, seed=1)

    @mb.program(input_specs=[spec((1, 2, 6, 7))], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.conv(x=x, weight=w, pad_type="same")

    x = rand(1, 2, 6, 7)
    ref = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding="same").numpy()
    np.testing.assert_allclose(run1(prog, x=x), ref, **tol(np.float32))


def test_conv_ios17_fp16_input_with_fp32_weight_and_dynamic_weight() -> None:
    w = rand(4, 3, 3, 3, seed=1)

    @mb.program(
        input_specs=[spec((1, 3, 5, 5), types.fp16), spec((4, 3, 1, 1), types.fp16)],
        opset_version=ct.target.iOS17,
    )
    def prog(x, w2):
        return mb.conv(x=x, weight=w, pad_type="valid"), mb.conv(x=x, weight=w2)

    x, w2 = rand(1, 3, 5, 5, dtype=np.float16), rand(4, 3, 1, 1, dtype=np.float16, seed=3)
    a, b = run(prog, x=x, w2=w2)
    assert a.dtype == np.float16 and b.dtype == np.float16
    ref_a = torch_conv(x, w, None, (1, 1), (1, 1), 1, [(0, 0), (0, 0)]).astype(np.float16)
    ref_b = torch_conv(x, w2, None, (1, 1), (1, 1), 1, [(0, 0), (0, 0)]).astype(np.float16)
    np.testing.assert_allclose(a.astype(np.float32), ref_a.astype(np.float32), **tol(np.float16))
    np.testing.assert_allclose(b.astype(np.float32), ref_b.astype(np.float32), **tol(np.float16))


def test_conv_quantized_linear_per_channel() -> None:
    wq = np.random.default_rng(0).integers(0, 256, size=(3, 2, 3, 3)).astype(np.uint8)
    scale = np.array([0.01, 0.02, 0.005], np.float32)
    zero = np.array([-1.0, 0.5, 0.0], np.float32)

    @mb.program(input_specs=[spec((1, 2, 6, 6))], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.conv_quantized(
            x=x,
            weight=wq,
            quantization_type="linear",
            nbits=8,
            quant_scale=scale,
            quant_bias=zero,
            pad_type="same",
        )

    x = rand(1, 2, 6, 6)
    w = wq.astype(np.float32) * scale[:, None, None, None] + zero[:, None, None, None]
    ref = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding="same").numpy()
    np.testing.assert_allclose(run1(prog, x=x), ref, rtol=1e-5, atol=1e-5)


T_CASES = [
    # spatial, kernel, strides, dilations, groups, torch padding, torch output_padding
    ((5,), (3,), (2,), (1,), 1, 0, 0),
    ((4, 5), (3, 3), (1, 2), (1, 1), 2, 0, 0),
    ((4, 5), (3, 2), (2, 2), (2, 1), 1, 1, 1),
    ((3, 4, 2), (2, 3, 2), (2, 1, 2), (1, 1, 1), 1, 1, 0),
]


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
@pytest.mark.parametrize("case", T_CASES)
def test_conv_transpose_matches_torch(np_dt, mil_dt, case) -> None:
    sizes, kernel, strides, dil, groups, p, op = case
    cin, cout = 4, 6
    n = len(sizes)
    w = rand(cin, cout // groups, *kernel, dtype=np_dt, seed=1)
    b = rand(cout, dtype=np_dt, seed=2)
    x = rand(2, cin, *sizes, dtype=np_dt)
    ref = CONV_T[n](
        torch.from_numpy(x.astype(np.float32)),
        torch.from_numpy(w.astype(np.float32)),
        torch.from_numpy(b.astype(np.float32)),
        strides,
        p,
        op,
        groups,
        dil,
    ).numpy()
    kw = {"pad_type": "valid"} if p == 0 else {"pad_type": "custom", "pad": [p] * (2 * n)}
    if op:
        kw["output_shape"] = list(ref.shape)

    @mb.program(input_specs=[spec(x.shape, mil_dt)], opset_version=ct.target.iOS17)
    def prog(xx):
        return mb.conv_transpose(
            x=xx, weight=w, bias=b, strides=strides, dilations=dil, groups=groups, **kw
        )

    out = run1(prog, xx=x)
    assert out.dtype == np_dt and out.shape == ref.shape
    np.testing.assert_allclose(
        out.astype(np.float32), ref.astype(np_dt).astype(np.float32), **tol(np_dt)
    )


def test_conv_transpose_same_matches_torch_symmetric_crop() -> None:
    # same: D_out = D*s; with K=4, s=2 the crop (K - s = 2) is torch padding=1.
    w = rand(3, 2, 4, 4, seed=1)

    @mb.program(input_specs=[spec((1, 3, 5, 6))], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.conv_transpose(x=x, weight=w, pad_type="same", strides=[2, 2])

    x = rand(1, 3, 5, 6)
    ref = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), stride=2, padding=1).numpy()
    out = run1(prog, x=x)
    assert out.shape == (1, 2, 10, 12)
    np.testing.assert_allclose(out, ref, **tol(np.float32))
