"""Executor kernel of MIL scaled_dot_product_attention against torch.nn.functional's."""

from __future__ import annotations

import coremltools as ct
import numpy as np
import pytest
import torch
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

from tests.executor.support import rand, run1, tol

FLOATS = [(np.float32, types.fp32), (np.float16, types.fp16)]


def _sdpa_ref(q, k, v, mask=None) -> np.ndarray:
    t = lambda a: torch.from_numpy(a.astype(np.float64))
    m = None if mask is None else (torch.from_numpy(mask) if mask.dtype == np.bool_ else t(mask))
    return torch.nn.functional.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=m).numpy()


@pytest.mark.parametrize("np_dt,mil_dt", FLOATS)
@pytest.mark.parametrize("mask_kind", [None, "bool", "float"])
def test_sdpa(np_dt, mil_dt, mask_kind) -> None:
    q, k, v = rand(2, 3, 4, 8, dtype=np_dt), rand(2, 3, 6, 8, dtype=np_dt, seed=1), rand(2, 3, 6, 5, dtype=np_dt, seed=2)
    specs = [mb.TensorSpec(a.shape, mil_dt) for a in (q, k, v)]
    mask = None
    if mask_kind == "bool":
        mask = np.random.default_rng(3).random((4, 6)) > 0.4
        mask[:, 0] = True  # no fully masked row
        specs.append(mb.TensorSpec(mask.shape, types.bool))
    elif mask_kind == "float":
        mask = rand(1, 3, 4, 6, dtype=np_dt, seed=4, low=-2, high=0)
        specs.append(mb.TensorSpec(mask.shape, mil_dt))

    if mask is None:
        @mb.program(input_specs=specs, opset_version=ct.target.iOS18)
        def prog(q, k, v):
            return mb.scaled_dot_product_attention(query=q, key=k, value=v)
        out = run1(prog, q=q, k=k, v=v)
    else:
        @mb.program(input_specs=specs, opset_version=ct.target.iOS18)
        def prog(q, k, v, m):
            return mb.scaled_dot_product_attention(query=q, key=k, value=v, attn_mask=m)
        out = run1(prog, q=q, k=k, v=v, m=mask)

    assert out.dtype == np_dt and out.shape == (2, 3, 4, 5)
    np.testing.assert_allclose(out, _sdpa_ref(q, k, v, mask), **tol(np_dt))


def test_sdpa_rank3_causal_mask() -> None:
    q, k, v = rand(2, 5, 4), rand(2, 5, 4, seed=1), rand(2, 5, 3, seed=2)
    causal = np.tril(np.ones((5, 5), dtype=bool))

    @mb.program(input_specs=[mb.TensorSpec((2, 5, 4)), mb.TensorSpec((2, 5, 4)), mb.TensorSpec((2, 5, 3))],
                opset_version=ct.target.iOS18)
    def prog(q, k, v):
        return mb.scaled_dot_product_attention(query=q, key=k, value=v, attn_mask=causal)

    ref = torch.nn.functional.scaled_dot_product_attention(
        *(torch.from_numpy(a.astype(np.float64)) for a in (q, k, v)), is_causal=True).numpy()
    np.testing.assert_allclose(run1(prog, q=q, k=k, v=v), ref, **tol(np.float32))
