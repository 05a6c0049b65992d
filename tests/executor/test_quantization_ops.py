"""Executor kernels of MIL quantize / dequantize against torch's quantization semantics."""

from __future__ import annotations

import coremltools as ct
import numpy as np
import pytest
import torch
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

from tests.executor.support import rand, run1

TORCH_Q = {"int8": torch.qint8, "uint8": torch.quint8}
NP_Q = {"int8": np.int8, "uint8": np.uint8}
# torch warns that its quantized tensors are deprecated; they are only our reference here.
pytestmark = pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")


@pytest.mark.parametrize("out_dtype", ["int8", "uint8"])
@pytest.mark.parametrize("with_zp", [True, False])
def test_quantize_per_tensor(out_dtype: str, with_zp: bool) -> None:
    zp = 3 if with_zp else 0
    kwargs = {"zero_point": NP_Q[out_dtype](zp)} if with_zp else {}

    @mb.program(input_specs=[mb.TensorSpec((4, 5))], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.quantize(input=x, scale=np.float32(0.02), output_dtype=out_dtype, **kwargs)

    x = rand(4, 5, low=-3, high=3)  # wide enough to saturate both ends
    ref = torch.quantize_per_tensor(torch.from_numpy(x), 0.02, zp, TORCH_Q[out_dtype]).int_repr().numpy()
    out = run1(prog, x=x)
    assert out.dtype == NP_Q[out_dtype]
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_quantize_per_axis(axis: int) -> None:
    n = (3, 4)[axis]
    scale = np.linspace(0.01, 0.05, n).astype(np.float32)
    zp = np.arange(n).astype(np.uint8) * 10

    @mb.program(input_specs=[mb.TensorSpec((3, 4))], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.quantize(input=x, scale=scale, zero_point=zp, axis=axis, output_dtype="uint8")

    x = rand(3, 4, low=-2, high=2)
    ref = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(scale.astype(np.float64)),
                                     torch.from_numpy(zp.astype(np.int64)), axis % 2, torch.quint8)
    np.testing.assert_array_equal(run1(prog, x=x), ref.int_repr().numpy())


def test_quantize_fp16_input_rounds_half_to_even() -> None:
    @mb.program(input_specs=[mb.TensorSpec((6,), types.fp16)], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.quantize(input=x, scale=np.float16(0.5), output_dtype="int8")

    x = np.array([0.25, 0.75, -0.25, 1.25, 100.0, -100.0], np.float16)  # x/scale = .5, 1.5, -.5, 2.5
    np.testing.assert_array_equal(run1(prog, x=x), [0, 2, 0, 2, 127, -128])


@pytest.mark.parametrize("np_dt,mil_dt", [(np.float32, types.fp32), (np.float16, types.fp16)])
@pytest.mark.parametrize("in_dtype", [np.int8, np.uint8])
def test_dequantize_per_axis(np_dt, mil_dt, in_dtype) -> None:
    scale = np.array([0.5, 0.25, 0.125], np_dt)
    zp = np.array([1, 2, 3], in_dtype)

    @mb.program(input_specs=[mb.TensorSpec((2, 3), types.numpy_type_to_builtin_type(in_dtype))],
                opset_version=ct.target.iOS17)
    def prog(q):
        return mb.dequantize(input=q, scale=scale, zero_point=zp, axis=1)

    q = np.array([[0, 5, 100], [127, 3, 7]], in_dtype)
    t = torch.from_numpy(q.astype(np.int64))
    ref = (t - torch.from_numpy(zp.astype(np.int64))) * torch.from_numpy(scale.astype(np.float64))
    out = run1(prog, q=q)
    assert out.dtype == np_dt
    np.testing.assert_array_equal(out, ref.numpy().astype(np_dt))


def test_dequantize_scalar_no_zero_point() -> None:
    @mb.program(input_specs=[mb.TensorSpec((4,), types.int8)], opset_version=ct.target.iOS18)
    def prog(q):
        return mb.dequantize(input=q, scale=np.float32(0.1))

    q = np.array([-128, -1, 0, 127], np.int8)
    np.testing.assert_allclose(run1(prog, q=q), q.astype(np.float64) * 0.1, rtol=1e-6)
