"""Matrix products: MatMul, Gemm (Einsum lives in ``einsum.py``).

A constant rank-2 weight makes the product MIL ``linear`` (weight and bias folded at conversion
time), which Core ML runs as a fully connected layer; otherwise ``matmul`` with its transpose
flags, so no separate transpose op is emitted.

Spec changes read: MatMul 1, 9 (integer types), 13 (bfloat16).  Gemm 7 (broadcast attribute
removed: C broadcasts unidirectionally), 9, 11 (C optional), 13 (types).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.registry import onnx_op

log = logging.getLogger(__name__)


@onnx_op("MatMul", since=1)
def matmul(ctx: LowerContext, node: Node) -> Any:
    """Y = A @ B with numpy semantics (1-D operands promoted, batch dims broadcast).  MIL: matmul; linear for a constant 2-D float B.

    ``linear`` is picked only where it is one op like matmul (A of rank 1-3, MIL's limit).
    A 1-D B is matmul on a [K, 1] column then squeeze (coremltools rejects a 1-D y).
    """
    a, b = node.input(0), node.input(1)
    b_val = ctx.value_of(b)
    if b_val is not None and b_val.ndim == 2 and 1 <= a.rank <= 3 and ctx.is_float(a):
        weight = np.ascontiguousarray(b_val.T).astype(ctx.np_dtype(a))
        return ctx.mb.linear(x=a, weight=ctx.const(weight))
    if ctx.np_dtype(a) != ctx.np_dtype(b):
        b = ctx.cast(b, ctx.np_dtype(a))
    if b.rank != 1:
        return ctx.mb.matmul(x=a, y=b)
    # coremltools' matmul type inference fails on a 1-D y: use [K, 1] and drop that axis.
    column = (
        ctx.const(b_val.reshape(-1, 1)) if b_val is not None else ctx.mb.expand_dims(x=b, axes=[-1])
    )
    return ctx.mb.squeeze(x=ctx.mb.matmul(x=a, y=column), axes=[-1])


def _bias_vector(c: np.ndarray, n: int) -> np.ndarray | None:
    """``c`` as a length-n bias when it broadcasts along rows only (shape (), (1,), (n,), (1, n)...)."""
    if c.size == 1:
        return np.full(n, c.reshape(()), c.dtype)
    if c.ndim >= 1 and c.shape[-1] == n and c.size == n:
        return c.reshape(n)
    return None


@onnx_op("Gemm", since=7)
def gemm(ctx: LowerContext, node: Node) -> Any:
    """Y = alpha * A' @ B' + beta * C, A' = A^T if transA, B' = B^T if transB.  MIL: linear (constant B, row-broadcast C); else matmul, mul, add.

    alpha and beta are folded into the constant weight and bias; a C that varies along rows
    (shape (M, N) or (M, 1)) is a separate add.
    """
    a, b, c = node.input(0), node.input(1), node.input(2)
    alpha = float(node.attrs.get("alpha", 1.0))
    beta = float(node.attrs.get("beta", 1.0))
    trans_a = bool(node.attrs.get("transA", 0))
    trans_b = bool(node.attrs.get("transB", 0))
    if a.rank != 2 or b.rank != 2:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: Gemm takes 2-D A and B, got ranks {a.rank} and {b.rank}"
        )
    dt = ctx.np_dtype(a)
    b_val, c_val = ctx.value_of(b), ctx.value_of(c)
    if c_val is not None:
        c_val = np.asarray(c_val, np.float64 if dt.kind == "f" else np.int64) * beta
    if b_val is not None and dt.kind == "f":
        weight = (b_val if trans_b else b_val.T).astype(np.float64) * alpha  # [N, K]
        x = ctx.mb.transpose(x=a, perm=[1, 0]) if trans_a else a
        bias = None if c_val is None else _bias_vector(c_val, weight.shape[0])
        kwargs: dict[str, Any] = {"x": x, "weight": ctx.const(weight.astype(dt))}
        if bias is not None and np.any(bias != 0):
            kwargs["bias"] = ctx.const(bias.astype(dt))
        y = ctx.mb.linear(**kwargs)
        if c is None or bias is not None:
            return y
        return _add_c(ctx, y, c, c_val, beta)
    if ctx.np_dtype(b) != dt:
        b = ctx.cast(b, dt)
    y = ctx.mb.matmul(x=a, y=b, transpose_x=trans_a, transpose_y=trans_b)
    if alpha != 1.0:
        y = ctx.mb.mul(x=y, y=ctx.scalar_like(y, alpha))
    return y if c is None else _add_c(ctx, y, c, c_val, beta)


def _add_c(ctx: LowerContext, y: Any, c: Any, c_val: np.ndarray | None, beta: float) -> Any:
    """y + beta * C (C folded when constant; skipped when beta is 0)."""
    dt = ctx.np_dtype(y)
    if c_val is not None:
        if not np.any(c_val):
            return y
        return ctx.mb.add(x=y, y=ctx.const(c_val.astype(dt)))
    if beta == 0.0:
        return y
    c = ctx.cast(c, dt)
    if beta != 1.0:
        c = ctx.mb.mul(x=c, y=ctx.scalar_like(y, beta))
    return ctx.mb.add(x=y, y=c)
