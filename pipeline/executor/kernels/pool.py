"""Kernels of MIL's pooling ops (coremltools defs: pool.py).

Ops: avg_pool (exclude_padding_from_average, ceil_mode), l2_pool, max_pool; 1-D to 3-D;
pad types valid/same/same_lower/custom as for conv (see conv.spatial_pads).

Output size per spatial dim (total pad P, kernel k, stride s): ``floor((D + P - k)/s) + 1``;
with ``ceil_mode`` ``floor((D + P - k + s - 1)/s) + 1``, less one when that last window would
start at or past ``D + pad_before`` and ``P > 0`` (the MIL doc's rule).  Windows running past
the padded input (ceil mode) only see real and padded elements: they are not counted in an
average.  fp16 is computed in fp32 and rounded once (max_pool is exact either way).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.errors import ExecutorError
from pipeline.executor.kernels.conv import spatial_pads
from pipeline.executor.kernels.registry import mil_kernel
from pipeline.executor.kernels.tensor_transformation import ints

log = logging.getLogger(__name__)


def _geometry(
    x: np.ndarray, kernel_sizes: Any, strides: Any, pad_type: Any, pad: Any, ceil_mode: Any
) -> tuple[list[int], list[int], list[tuple[int, int]], list[int]]:
    """kernel, strides, explicit (before, after) pads, and extra overhang at the end per dim."""
    nsp = x.ndim - 2
    if nsp not in (1, 2, 3):
        raise ExecutorError(f"execute: pooling needs 1-3 spatial dims, x has shape {x.shape}")
    k = ints(kernel_sizes)
    st = ints(strides) if strides is not None else [1] * nsp
    pads = spatial_pads(
        str(pad_type or "valid"),
        list(x.shape[2:]),
        k,
        st,
        [1] * nsp,
        ints(pad) if pad is not None else None,
    )
    overhang = []
    for size, kk, s, (pb, pa) in zip(x.shape[2:], k, st, pads):
        total = pb + pa
        if bool(ceil_mode):
            out = (size + total - kk + s - 1) // s + 1
            if (out - 1) * s >= size + pb and total > 0:
                out -= 1
        else:
            out = (size + total - kk) // s + 1
        overhang.append(max(0, (out - 1) * s + kk - (size + total)))
    return k, st, pads, overhang


def _pad(
    t: torch.Tensor, pads: list[tuple[int, int]], extra: list[int], value: float, extra_value: float
) -> torch.Tensor:
    """Pad explicit pads with ``value`` and the ceil-mode overhang with ``extra_value``."""
    flat_pad: list[int] = []
    flat_extra: list[int] = []
    for (pb, pa), e in zip(reversed(pads), reversed(extra)):
        flat_pad += [pb, pa]
        flat_extra += [0, e]
    if any(flat_pad):
        t = F.pad(t, flat_pad, value=value)
    if any(flat_extra):
        t = F.pad(t, flat_extra, value=extra_value)
    return t


def _avg(t: torch.Tensor, k: list[int], st: list[int]) -> torch.Tensor:
    fn = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[len(k) - 1]
    return fn(t, k, st, 0)  # type: ignore[operator]


@mil_kernel("max_pool")
def max_pool(
    x: np.ndarray,
    kernel_sizes: Any,
    pad_type: Any = "valid",
    strides: Any = None,
    pad: Any = None,
    ceil_mode: Any = False,
) -> np.ndarray:
    """y = max over each window; padding never wins (-inf)."""
    k, st, pads, extra = _geometry(x, kernel_sizes, strides, pad_type, pad, ceil_mode)
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    fn = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[len(k) - 1]
    inner = [before for before, _ in pads]
    # torch pads with -inf itself when the padding is symmetric and at most half a window:
    # the same windows without copying the input into a padded buffer.
    if not any(extra) and all(b == a and 2 * b <= kk for (b, a), kk in zip(pads, k)):
        with torch.no_grad():
            y = fn(t, k, st, inner)  # type: ignore[operator]
        return y.numpy().astype(x.dtype, copy=False)
    t = _pad(t, pads, extra, -np.inf, -np.inf)
    with torch.no_grad():
        y = fn(t, k, st, 0)  # type: ignore[operator]
    return y.numpy().astype(x.dtype, copy=False)


@mil_kernel("avg_pool")
def avg_pool(
    x: np.ndarray,
    kernel_sizes: Any,
    pad_type: Any = "valid",
    strides: Any = None,
    pad: Any = None,
    ceil_mode: Any = False,
    exclude_padding_from_average: Any = False,
) -> np.ndarray:
    """y = sum(window) / count; count includes padded zeros unless excluded."""
    k, st, pads, extra = _geometry(x, kernel_sizes, strides, pad_type, pad, ceil_mode)
    t = _pad(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), pads, extra, 0.0, 0.0)
    ones = torch.ones((1, 1, *x.shape[2:]), dtype=torch.float32)
    mask = _pad(ones, pads, extra, 0.0 if bool(exclude_padding_from_average) else 1.0, 0.0)
    with torch.no_grad():
        y = _avg(t, k, st) / _avg(mask, k, st)
    return y.numpy().astype(x.dtype, copy=False)


@mil_kernel("l2_pool")
def l2_pool(
    x: np.ndarray,
    kernel_sizes: Any,
    pad_type: Any = "valid",
    strides: Any = None,
    pad: Any = None,
    ceil_mode: Any = False,
) -> np.ndarray:
    """y = sqrt(sum over window of x^2); padding contributes 0."""
    k, st, pads, extra = _geometry(x, kernel_sizes, strides, pad_type, pad, ceil_mode)
    t = _pad(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), pads, extra, 0.0, 0.0)
    with torch.no_grad():
        y = torch.sqrt(_avg(t * t, k, st) * float(np.prod(k)))
    return y.numpy().astype(x.dtype, copy=False)
