"""Kernels of MIL's linear-algebra ops (coremltools defs: linear.py).

Ops: linear, matmul, einsum.

Precision: products are computed with torch on CPU (fast BLAS).  Float operands are multiplied
in fp32 and the result is rounded once to the op's dtype: an fp16 op accumulates in fp32 and
rounds its output to fp16, which mirrors device accumulation and keeps fp16 loss visible.
int32 operands are multiplied exactly in int64 and wrapped to int32 once.

Opset differences: iOS17 lets ``weight``/``bias`` (linear) and ``y`` (matmul) have a dtype
other than ``x``; the result has ``x``'s dtype.  Same arithmetic, one kernel from iOS15 on.
einsum supports the equations MIL defines (``nchw,nwhu->nchu``, ``chw,whr->chr`` and their
relabelings, with size-1 broadcasting of the batch axes); we evaluate any two-operand equation
whose repeated labels agree up to size-1 broadcasting.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from pipeline.errors import ExecutorError
from pipeline.executor.kernels.registry import mil_kernel

log = logging.getLogger(__name__)


def _work_dtype(*arrays: np.ndarray) -> np.dtype:
    """fp32 if any operand is a float, else int64."""
    if any(np.issubdtype(a.dtype, np.floating) for a in arrays):
        return np.dtype(np.float32)
    return np.dtype(np.int64)


def _t(a: np.ndarray, dtype: np.dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=dtype))


def _out(y: torch.Tensor, like: np.ndarray) -> np.ndarray:
    """Round (or wrap) the wide result once to the dtype of ``like``."""
    return y.numpy().astype(like.dtype, copy=False)


@mil_kernel("linear")
def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """y = x @ weight^T + bias, with weight [D_out, D_in]."""
    x, weight = np.asarray(x), np.asarray(weight)
    dt = _work_dtype(x, weight)
    b = None if bias is None else _t(np.asarray(bias), dt)
    if dt == np.float32:
        return _out(torch.nn.functional.linear(_t(x, dt), _t(weight, dt), b), x)
    y = torch.matmul(_t(x, dt), _t(weight, dt).T)
    return _out(y if b is None else y + b, x)


@mil_kernel("matmul")
def matmul(
    x: np.ndarray, y: np.ndarray, transpose_x: Any = False, transpose_y: Any = False
) -> np.ndarray:
    """z = op(x) @ op(y), op a transpose of the last two axes if asked; numpy matmul broadcasting
    (rank-1 operands promoted to matrices and the added axis removed)."""
    x, y = np.asarray(x), np.asarray(y)
    dt = _work_dtype(x, y)
    a, b = _t(x, dt), _t(y, dt)
    if bool(transpose_x) and a.dim() >= 2:
        a = a.transpose(-1, -2)
    if bool(transpose_y) and b.dim() >= 2:
        b = b.transpose(-1, -2)
    return _out(torch.matmul(a, b), x)


def _parse_equation(equation: str) -> tuple[list[str], str]:
    text = equation.replace(" ", "")
    if "->" not in text or "." in text:
        raise ExecutorError(
            f"execute: einsum equation {equation!r} needs an explicit '->' output and no "
            "ellipsis (MIL einsum takes e.g. 'nchw,nwhu->nchu')"
        )
    lhs, out = text.split("->")
    return lhs.split(","), out


@mil_kernel("einsum")
def einsum(values: list[np.ndarray], equation: Any) -> np.ndarray:
    """Tensor contraction by einsum notation; labels of size 1 broadcast against the others."""
    operands = [np.asarray(v) for v in values]
    terms, _ = _parse_equation(str(equation))
    if len(terms) != len(operands):
        raise ExecutorError(
            f"execute: einsum equation {equation!r} has {len(terms)} operands, got "
            f"{len(operands)} values"
        )
    sizes: dict[str, int] = {}
    for term, arr in zip(terms, operands):
        if len(term) != arr.ndim:
            raise ExecutorError(
                f"execute: einsum term {term!r} does not match an operand of shape {arr.shape}"
            )
        for label, n in zip(term, arr.shape):
            if sizes.get(label, 1) not in (1, n) and n != 1:
                raise ExecutorError(
                    f"execute: einsum label {label!r} has sizes {sizes[label]} and {n}"
                )
            sizes[label] = max(sizes.get(label, n), n) if n != 1 else sizes.get(label, 1)
    dt = _work_dtype(*operands)
    expanded = [
        _t(arr, dt).expand(*[sizes[label] for label in term]) for term, arr in zip(terms, operands)
    ]
    return _out(torch.einsum(str(equation).replace(" ", ""), *expanded), operands[0])
