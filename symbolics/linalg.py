"""Linear algebra: matrix inverse, pairwise distance.

Found by trying (torch 2.14.1, opset 18):

* ``aten::linalg_inv`` (dynamo sees ``aten::linalg_inv_ex``): both exporters fail
  (TorchScript: ``UnsupportedOperatorError: Exporting the operator 'aten::linalg_inv' to ONNX
  opset version 18 is not supported``; dynamo: ``ConversionError`` on ``linalg_inv_ex``).
* ``aten::cdist`` (dynamo sees ``aten::_cdist_forward``): dynamo fails (``ConversionError``);
  TorchScript exports it, but raises signed differences to the power p, so any p other than 2
  (e.g. p=1, p=3) gives NaN in onnxruntime.
* ``aten::linalg_det`` exports as ``Det`` with both; not covered.

No ONNX op inverts a matrix; for a static n the adjugate formula is exact in standard ops:
``inv(A) = adj(A) / det(A)`` with ``adj(A)[j, i] = (-1)^(i+j) det(minor_ij(A))``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from pipeline.errors import ExportError
from symbolics._common import builtin, const, ints, legacy_ints, legacy_shape, op, static_shape


def _minor_indices(n: int) -> np.ndarray:
    """idx[i] = the n-1 indices other than i."""
    return np.array([[k for k in range(n) if k != i] for i in range(n)], dtype=np.int64)


def _signs(n: int) -> np.ndarray:
    """(-1)^(i+j) as float32 [n, n]."""
    return np.fromfunction(lambda i, j: (-1.0) ** (i + j), (n, n)).astype(np.float32)


def _check_square(shape: list[int], what: str) -> int:
    if len(shape) < 2 or shape[-1] != shape[-2] or shape[-1] < 1:
        raise ExportError(f"symbolics: {what} needs square matrices [..., n, n], got {shape}")
    return shape[-1]


def _linalg_inv_legacy(g: Any, A: Any) -> Any:
    import torch

    shape = legacy_shape(A, "aten::linalg_inv")
    n = _check_square(shape, "aten::linalg_inv")
    batch = len(shape) - 2
    if n == 1:
        return g.op("Reciprocal", A)
    idx = g.op("Constant", value_t=torch.from_numpy(_minor_indices(n)))
    minors = g.op("Gather", g.op("Gather", A, idx, axis_i=batch), idx, axis_i=batch + 2)
    perm = list(range(batch)) + [batch, batch + 2, batch + 1, batch + 3]
    signs = g.op("CastLike", g.op("Constant", value_t=torch.from_numpy(_signs(n))), A)
    cof = g.op("Mul", g.op("Det", g.op("Transpose", minors, perm_i=perm)), signs)
    adj = g.op("Transpose", cof, perm_i=list(range(batch)) + [batch + 1, batch])
    det = g.op("Unsqueeze", g.op("Det", A), legacy_ints(g, [-1, -2]))
    return g.op("Div", adj, det)


def _inverse(A: Any) -> Any:
    """inv(A) = adj(A) / det(A), adj(A)[..., j, i] = (-1)^(i+j) det(minor_ij(A)), static n."""
    shape = static_shape(A, "aten::linalg_inv")
    n = _check_square(shape, "aten::linalg_inv")
    batch = len(shape) - 2
    if n == 1:
        return op.Reciprocal(A)
    idx = op.Constant(value=ir.tensor(_minor_indices(n)))
    rows = op.Gather(A, idx, axis=batch)  # [..., i, n-1, n]
    minors = op.Gather(rows, idx, axis=batch + 2)  # [..., i, n-1, j, n-1]
    perm = list(range(batch)) + [batch, batch + 2, batch + 1, batch + 3]
    cof = op.Mul(op.Det(op.Transpose(minors, perm=perm)),
                 op.CastLike(op.Constant(value=ir.tensor(_signs(n))), A))
    adj = op.Transpose(cof, perm=list(range(batch)) + [batch + 1, batch])
    return op.Div(adj, op.Unsqueeze(op.Det(A), ints([-1, -2])))


def linalg_inv_ex(A: Any, check_errors: bool = False) -> tuple[Any, Any]:
    """(inv(A), info) for torch.linalg.inv_ex; info is zeros (no singularity report)."""
    shape = static_shape(A, "aten::linalg_inv_ex")
    info = op.ConstantOfShape(ints(shape[:-2]), value=ir.tensor(np.zeros(1, np.int32)))
    return _inverse(A), info


# torch.export keeps aten.linalg_inv whole once it has a translation; inv_ex is the helper.
@builtin(
    "aten::linalg_inv", opset=18, legacy=_linalg_inv_legacy,
    helpers={"aten::linalg_inv_ex.default": linalg_inv_ex},
)
def linalg_inv(A: Any) -> Any:
    """inv(A) = adj(A) / det(A) for a static n (exact in standard ops: Gather, Det, Div).

    Limits: cost n^2 determinants of size n-1; singular A gives inf/nan (torch raises).
    """
    return _inverse(A)


def _cdist_legacy(g: Any, x1: Any, x2: Any, p: Any, compute_mode: Any) -> Any:
    import torch

    diff = g.op("Abs", g.op("Sub", g.op("Unsqueeze", x1, legacy_ints(g, [-2])),
                            g.op("Unsqueeze", x2, legacy_ints(g, [-3]))))
    axis = legacy_ints(g, [-1])
    power = float(const(p, "f"))
    if power == 2.0:
        return g.op("Sqrt", g.op("ReduceSum", g.op("Mul", diff, diff), axis, keepdims_i=0))
    if power == 1.0:
        return g.op("ReduceSum", diff, axis, keepdims_i=0)
    if power == float("inf"):
        return g.op("ReduceMax", diff, axis, keepdims_i=0)
    if power == 0.0:
        zero = g.op("CastLike", g.op("Constant", value_t=torch.tensor(0.0)), diff)
        nonzero = g.op("CastLike", g.op("Not", g.op("Equal", diff, zero)), diff)
        return g.op("ReduceSum", nonzero, axis, keepdims_i=0)
    exponent = g.op("CastLike", g.op("Constant", value_t=torch.tensor(power)), diff)
    total = g.op("ReduceSum", g.op("Pow", diff, exponent), axis, keepdims_i=0)
    return g.op("Pow", total, g.op("Reciprocal", exponent))


# TorchScript's own aten::cdist symbolic takes Pow of signed differences: NaN for odd p.
@builtin("aten::cdist", opset=18, legacy=_cdist_legacy, targets=("aten::_cdist_forward.default",))
def cdist_forward(x1: Any, x2: Any, p: float, compute_mode: Any = None) -> Any:
    """y[..., i, j] = ||x1[..., i, :] - x2[..., j, :]||_p (p = 0, 1, 2, inf or any p > 0)."""
    diff = op.Abs(op.Sub(op.Unsqueeze(x1, ints([-2])), op.Unsqueeze(x2, ints([-3]))))
    axis = ints([-1])
    p = float(p)
    if p == 2.0:
        return op.Sqrt(op.ReduceSum(op.Mul(diff, diff), axis, keepdims=0))
    if p == 1.0:
        return op.ReduceSum(diff, axis, keepdims=0)
    if p == float("inf"):
        return op.ReduceMax(diff, axis, keepdims=0)
    if p == 0.0:
        nonzero = op.CastLike(op.Not(op.Equal(diff, op.CastLike(0.0, diff))), diff)
        return op.ReduceSum(nonzero, axis, keepdims=0)
    power = op.CastLike(p, diff)
    return op.Pow(op.ReduceSum(op.Pow(diff, power), axis, keepdims=0),
                  op.Reciprocal(power))
