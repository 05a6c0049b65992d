"""Executor kernels of MIL normalization ops vs torch.nn.functional / numpy in float64."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import coremltools as ct
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

from tests.executor.support import rand, run1, tol

FLOATS = [(types.fp32, np.float32), (types.fp16, np.float16)]
OPSETS = [ct.target.iOS15, ct.target.iOS17]


def _prog(
    build: Callable[[Any], Any], shape: tuple[int, ...], dtype: Any, opset: Any = ct.target.iOS15
) -> Any:
    @mb.program(input_specs=[mb.TensorSpec(shape=shape, dtype=dtype)], opset_version=opset)
    def prog(x: Any) -> Any:
        return build(x)

    return prog


def _check(got: np.ndarray, want: np.ndarray, np_dtype: Any) -> None:
    assert got.dtype == np_dtype and got.shape == want.shape
    np.testing.assert_allclose(
        got.astype(np.float64), want.astype(np_dtype).astype(np.float64), **tol(np_dtype)
    )


def _t64(a: np.ndarray | None) -> torch.Tensor | None:
    return None if a is None else torch.from_numpy(a.astype(np.float64))


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize(
    "shape", [(2, 3, 5), (2, 3, 4, 5), (1, 3, 2, 3, 4)], ids=["r3", "r4", "r5"]
)
@pytest.mark.parametrize("mil_dtype,np_dtype", FLOATS, ids=["fp32", "fp16"])
def test_batch_norm(mil_dtype: Any, np_dtype: Any, shape: tuple[int, ...], affine: bool) -> None:
    x = rand(*shape, dtype=np_dtype, low=-2, high=2)
    mean = rand(3, dtype=np_dtype, seed=1)
    var = rand(3, dtype=np_dtype, seed=2, low=0.2, high=2.0)
    gamma = rand(3, dtype=np_dtype, seed=3) if affine else None
    beta = rand(3, dtype=np_dtype, seed=4) if affine else None
    eps = np_dtype(1e-3)

    def build(v: Any) -> Any:
        if affine:
            return mb.batch_norm(x=v, mean=mean, variance=var, gamma=gamma, beta=beta, epsilon=eps)
        return mb.batch_norm(x=v, mean=mean, variance=var, epsilon=eps)

    want = F.batch_norm(
        _t64(x),
        _t64(mean),
        _t64(var),
        weight=_t64(gamma),
        bias=_t64(beta),
        training=False,
        eps=float(eps),
    ).numpy()
    _check(run1(_prog(build, shape, mil_dtype), x=x), want, np_dtype)


def test_batch_norm_default_epsilon_iOS17_fp32_params_on_fp16() -> None:
    x = rand(2, 3, 4, 4, dtype=np.float16)
    mean, var = rand(3, seed=1), rand(3, seed=2, low=0.5, high=1.5)
    prog = _prog(
        lambda v: mb.batch_norm(x=v, mean=mean, variance=var), x.shape, types.fp16, ct.target.iOS17
    )
    want = F.batch_norm(_t64(x), _t64(mean), _t64(var), training=False, eps=1e-5).numpy()
    _check(run1(prog, x=x), want, np.float16)


@pytest.mark.parametrize("opset", OPSETS, ids=["iOS15", "iOS17"])
@pytest.mark.parametrize("shape", [(2, 3, 7), (2, 3, 4, 5)], ids=["r3", "r4"])
@pytest.mark.parametrize("mil_dtype,np_dtype", FLOATS, ids=["fp32", "fp16"])
def test_instance_norm(mil_dtype: Any, np_dtype: Any, shape: tuple[int, ...], opset: Any) -> None:
    x = rand(*shape, dtype=np_dtype, low=-2, high=3)
    gamma, beta = rand(3, dtype=np_dtype, seed=3), rand(3, dtype=np_dtype, seed=4)
    prog = _prog(
        lambda v: mb.instance_norm(x=v, gamma=gamma, beta=beta, epsilon=np_dtype(1e-4)),
        shape,
        mil_dtype,
        opset,
    )
    want = F.instance_norm(_t64(x), weight=_t64(gamma), bias=_t64(beta), eps=1e-4).numpy()
    _check(run1(prog, x=x), want, np_dtype)
    prog = _prog(lambda v: mb.instance_norm(x=v), shape, mil_dtype, opset)
    _check(run1(prog, x=x), F.instance_norm(_t64(x), eps=1e-5).numpy(), np_dtype)


@pytest.mark.parametrize(
    "shape", [(3, 4, 5), (2, 3, 4, 5), (2, 2, 3, 4, 5)], ids=["r3", "r4", "r5"]
)
@pytest.mark.parametrize("mil_dtype,np_dtype", FLOATS, ids=["fp32", "fp16"])
def test_l2_norm(mil_dtype: Any, np_dtype: Any, shape: tuple[int, ...]) -> None:
    x = rand(*shape, dtype=np_dtype)
    prog = _prog(lambda v: mb.l2_norm(x=v, epsilon=np_dtype(1e-2)), shape, mil_dtype)
    v = x.astype(np.float64)
    flat = v.reshape(-1, int(np.prod(shape[-3:])))
    want = (flat / np.sqrt(np.sum(flat * flat, axis=1, keepdims=True) + 1e-2)).reshape(shape)
    _check(run1(prog, x=x), want, np_dtype)


# (axes omitted cannot be built: coremltools materialises its default as an unaddable range)
LAYER_AXES = [[-1], [2, 3], [1, -1], [0, 1, 2, 3]]


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("axes", LAYER_AXES, ids=[str(a) for a in LAYER_AXES])
@pytest.mark.parametrize("mil_dtype,np_dtype", FLOATS, ids=["fp32", "fp16"])
def test_layer_norm(mil_dtype: Any, np_dtype: Any, axes: Any, affine: bool) -> None:
    shape = (2, 3, 4, 5)
    x = rand(*shape, dtype=np_dtype, low=-2, high=3)
    norm_axes = sorted(a % 4 for a in axes)
    pshape = tuple(shape[a] for a in norm_axes)
    gamma = rand(*pshape, dtype=np_dtype, seed=5) if affine else None
    beta = rand(*pshape, dtype=np_dtype, seed=6) if affine else None

    def build(v: Any) -> Any:
        kw: dict[str, Any] = {"epsilon": np_dtype(1e-3), "axes": axes}
        if affine:
            kw.update(gamma=gamma, beta=beta)
        return mb.layer_norm(x=v, **kw)

    v = x.astype(np.float64)
    ax = tuple(norm_axes)
    mean = v.mean(axis=ax, keepdims=True)
    var = ((v - mean) ** 2).mean(axis=ax, keepdims=True)
    want = (v - mean) / np.sqrt(var + 1e-3)
    if affine:
        bshape = [shape[i] if i in norm_axes else 1 for i in range(4)]
        want = want * gamma.astype(np.float64).reshape(bshape) + beta.astype(np.float64).reshape(
            bshape
        )
    if axes == [-1] and affine:  # cross-check the common case against torch
        torch_want = F.layer_norm(_t64(x), (5,), _t64(gamma), _t64(beta), eps=1e-3).numpy()
        np.testing.assert_allclose(want, torch_want, rtol=1e-12, atol=1e-12)
    _check(run1(_prog(build, shape, mil_dtype), x=x), want, np_dtype)


@pytest.mark.parametrize("size", [1, 3, 5])
@pytest.mark.parametrize("shape", [(2, 6, 7), (2, 6, 3, 4)], ids=["r3", "r4"])
@pytest.mark.parametrize("mil_dtype,np_dtype", FLOATS, ids=["fp32", "fp16"])
def test_local_response_norm(
    mil_dtype: Any, np_dtype: Any, shape: tuple[int, ...], size: int
) -> None:
    x = rand(*shape, dtype=np_dtype, low=-3, high=3)
    prog = _prog(
        lambda v: mb.local_response_norm(
            x=v, size=size, alpha=np_dtype(0.5), beta=np_dtype(0.6), k=np_dtype(1.5)
        ),
        shape,
        mil_dtype,
    )
    want = F.local_response_norm(_t64(x), size, alpha=0.5, beta=0.6, k=1.5).numpy()
    _check(run1(prog, x=x), want, np_dtype)


def test_local_response_norm_defaults_iOS17() -> None:
    x = rand(1, 5, 4, 4, low=-20, high=20)
    prog = _prog(
        lambda v: mb.local_response_norm(x=v, size=3), x.shape, types.fp32, ct.target.iOS17
    )
    want = F.local_response_norm(_t64(x), 3, alpha=1e-4, beta=0.75, k=1.0).numpy()
    _check(run1(prog, x=x), want, np.float32)


def test_local_response_norm_even_size_window() -> None:
    """Even size: window [c - (size-1)//2, c + size//2] (ONNX LRN), computed by a direct loop."""
    x = rand(1, 6, 2, low=-2, high=2)
    prog = _prog(
        lambda v: mb.local_response_norm(x=v, size=4, alpha=1.0, beta=0.5, k=1.0),
        x.shape,
        types.fp32,
    )
    v = x.astype(np.float64)
    want = np.empty_like(v)
    for c in range(6):
        lo, hi = max(0, c - 1), min(6, c + 2 + 1)
        want[:, c] = v[:, c] / (1.0 + 1.0 / 4 * np.sum(v[:, lo:hi] ** 2, axis=1)) ** 0.5
    _check(run1(prog, x=x), want, np.float32)
