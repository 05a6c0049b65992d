"""Order statistics and scans along one axis: median, kthvalue, cumprod.

Found by trying (torch 2.14.1, opset 18), both exporters fail on each:

* ``aten::median`` (dynamo ``aten.median.dim``): ``UnsupportedOperatorError: Exporting the
  operator 'aten::median' to ONNX opset version 18 is not supported`` / ``ConversionError``.
* ``aten::kthvalue``: same two errors.
* ``aten::cumprod``: TorchScript ``UnsupportedOperatorError``; dynamo decomposes it into
  ``prims.prod`` and fails with ``ConversionError``.

All three need the length of the reduced axis to be static.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from pipeline.errors import ExportError
from symbolics._common import (
    builtin,
    const,
    ints,
    legacy_ints,
    legacy_onnx_type,
    legacy_shape,
    onnx_type,
    op,
    static_shape,
)


def _axis(dim: int, rank: int, what: str) -> int:
    if not -max(rank, 1) <= dim < max(rank, 1):
        raise ExportError(f"symbolics: {what}: dim {dim} out of range for rank {rank}")
    return dim % max(rank, 1)


# -- k-th smallest ------------------------------------------------------------------------------
def _kth(x: Any, k: int, axis: int, keepdim: bool) -> tuple[Any, Any]:
    """The k-th smallest (1-based) along ``axis`` and its index, via TopK(largest=0)."""
    values, indices = op.TopK(x, ints([k]), axis=axis, largest=0, sorted=1)
    pick = ints([k - 1])
    values = op.Gather(values, pick, axis=axis)
    indices = op.Gather(indices, pick, axis=axis)
    if not keepdim:
        values, indices = op.Squeeze(values, ints([axis])), op.Squeeze(indices, ints([axis]))
    return values, indices


def _legacy_kth(g: Any, x: Any, k: int, axis: int, keepdim: bool) -> tuple[Any, Any]:
    values, indices = g.op("TopK", x, legacy_ints(g, [k]), axis_i=axis, largest_i=0,
                           sorted_i=1, outputs=2)
    pick = legacy_ints(g, [k - 1])
    values = g.op("Gather", values, pick, axis_i=axis)
    indices = g.op("Gather", indices, pick, axis_i=axis)
    if not keepdim:
        axes = legacy_ints(g, [axis])
        values, indices = g.op("Squeeze", values, axes), g.op("Squeeze", indices, axes)
    return values, indices


def _median_legacy(g: Any, x: Any, dim: Any = None, keepdim: Any = None) -> Any:
    shape = legacy_shape(x, "aten::median")
    if dim is None:  # median(x): over all elements, one output
        n = int(np.prod(shape))
        flat = g.op("Reshape", x, legacy_ints(g, [-1]))
        return _legacy_kth(g, flat, (n - 1) // 2 + 1, 0, False)[0]
    axis = _axis(const(dim, "i"), len(shape), "aten::median")
    return _legacy_kth(g, x, (shape[axis] - 1) // 2 + 1 if shape else 1, axis,
                       bool(const(keepdim, "b")))


@builtin("aten::median", opset=18, legacy=_median_legacy,
         targets=("aten::median.dim", "aten::median.default"))
def median(input: Any, dim: int | None = None, keepdim: bool = False) -> Any:
    """Lower median: the ((n-1)//2 + 1)-th smallest along dim (or of all elements).

    Limits: NaN is not propagated (torch returns NaN when one is present).
    """
    shape = static_shape(input, "aten::median")
    if dim is None:
        n = int(np.prod(shape))
        return _kth(op.Reshape(input, ints([-1])), (n - 1) // 2 + 1, 0, False)[0]
    axis = _axis(int(dim), len(shape), "aten::median")
    return _kth(input, (shape[axis] - 1) // 2 + 1 if shape else 1, axis, bool(keepdim))


def _kthvalue_legacy(g: Any, x: Any, k: Any, dim: Any, keepdim: Any) -> tuple[Any, Any]:
    shape = legacy_shape(x, "aten::kthvalue")
    axis = _axis(const(dim, "i"), len(shape), "aten::kthvalue")
    return _legacy_kth(g, x, const(k, "i"), axis, bool(const(keepdim, "b")))


@builtin("aten::kthvalue", opset=18, legacy=_kthvalue_legacy)
def kthvalue(input: Any, k: int, dim: int = -1, keepdim: bool = False) -> tuple[Any, Any]:
    """(values, indices) of the k-th smallest (1-based) along dim."""
    shape = static_shape(input, "aten::kthvalue")
    return _kth(input, int(k), _axis(int(dim), len(shape), "aten::kthvalue"), bool(keepdim))


# -- cumprod ------------------------------------------------------------------------------------
def _tril_mask(n: int, trailing: int) -> np.ndarray:
    """mask[i, j, 1...] = j <= i, with ``trailing`` unit axes for broadcasting."""
    return np.tril(np.ones((n, n), dtype=bool)).reshape((n, n) + (1,) * trailing)


def _cumprod_legacy(g: Any, x: Any, dim: Any, dtype: Any) -> Any:
    import torch

    shape = legacy_shape(x, "aten::cumprod")
    axis = _axis(const(dim, "i"), len(shape), "aten::cumprod")
    if const(dtype, "i") is not None:
        x = g.op("Cast", x, to_i=legacy_onnx_type(const(dtype, "i")))
    if not shape:
        return x
    mask = g.op("Constant", value_t=torch.from_numpy(
        _tril_mask(shape[axis], len(shape) - axis - 1)))
    one = g.op("CastLike", g.op("Constant", value_t=torch.tensor(1.0)), x)
    spread = g.op("Where", mask, g.op("Unsqueeze", x, legacy_ints(g, [axis])), one)
    return g.op("ReduceProd", spread, legacy_ints(g, [axis + 1]), keepdims_i=0)


@builtin("aten::cumprod", opset=18, legacy=_cumprod_legacy)
def cumprod(input: Any, dim: int, dtype: Any = None) -> Any:
    """y[..., i, ...] = prod_{j <= i} x[..., j, ...] along dim (O(n^2) products, exact).

    A triangular mask spreads x to [..., i, j, ...] (1 where j > i) and ReduceProd sums out j.
    """
    shape = static_shape(input, "aten::cumprod")
    if dtype is not None:
        input = op.Cast(input, to=onnx_type(dtype))
    if not shape:
        return input
    axis = _axis(int(dim), len(shape), "aten::cumprod")
    mask = op.Constant(value=ir.tensor(_tril_mask(shape[axis], len(shape) - axis - 1)))
    spread = op.Where(mask, op.Unsqueeze(input, ints([axis])), op.CastLike(1.0, input))
    return op.ReduceProd(spread, ints([axis + 1]), keepdims=0)
