"""Linear algebra without a MIL twin: Det.

MIL has no determinant.  For the small matrices models carry (3x3 rotations, 2x2 Jacobians,
4x4 transforms) the Leibniz formula, det X = sum over permutations s of sign(s) prod_i
X[i, s(i)], is five MIL ops whatever n is: the n! x n element indices are constants, so
``gather`` fetches every product's factors at once, ``reduce_prod`` forms the products, and
``mul`` by the constant signs and ``reduce_sum`` add them up.  No division and no pivoting, so it has no
data-dependent control flow; the cost (n! products) limits it to n <= 5.  An LU elimination
would need a pivot search per column (argmax, gather, select: ~10 ops per step), which is only
worth it for larger n.

Spec changes read: Det 11, 22 (types only).
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.registry import composite_op

log = logging.getLogger(__name__)

#: Largest matrix the Leibniz composite accepts (5! = 120 products).
MAX_DET_SIZE = 5


def leibniz_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(flat indices [n!, n] of each permutation's factors in a row-major n x n, signs [n!])."""
    perms = list(itertools.permutations(range(n)))
    index = np.array([[i * n + p[i] for i in range(n)] for p in perms], np.int32)
    signs = []
    for p in perms:
        inversions = sum(1 for i in range(n) for j in range(i + 1, n) if p[i] > p[j])
        signs.append(-1.0 if inversions % 2 else 1.0)
    return index, np.array(signs)


@composite_op("Det", since=11)
def det(ctx: LowerContext, node: Node) -> Any:
    """y[...] = det(x[..., :, :]) over the last two (square) dims.

    MIL: reshape, gather, reduce_prod, mul, reduce_sum (Leibniz formula with constant tables); folded
    when x is constant.  Limits: n <= 5 and static dims.
    """
    x = node.input(0)
    dims = list(x.shape)
    if len(dims) < 2 or not all(isinstance(d, (int, np.integer)) for d in dims):
        raise UnsupportedOpError(f"lower: {node.describe()}: Det needs a static [..., n, n] input, got {dims}")
    n = int(dims[-1])
    if int(dims[-2]) != n or n > MAX_DET_SIZE:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: matrices of {dims[-2]}x{n}; the Det composite takes square "
            f"matrices up to {MAX_DET_SIZE}x{MAX_DET_SIZE}. Compute the determinant outside the model"
        )
    dtype = ctx.np_dtype(x)
    val = ctx.value_of(x)
    if val is not None:
        return ctx.const(np.linalg.det(val.astype(np.float64)).astype(dtype))
    batch = [int(d) for d in dims[:-2]]
    if n == 1:
        return ctx.mb.reshape(x=x, shape=batch) if batch else ctx.mb.squeeze(x=x)
    index, signs = leibniz_tables(n)
    flat = ctx.mb.reshape(x=x, shape=batch + [n * n] if batch else [n * n])
    factors = ctx.mb.gather(x=flat, indices=index, axis=-1)
    products = ctx.mb.reduce_prod(x=factors, axes=[-1], keep_dims=False)
    return ctx.mb.reduce_sum(x=ctx.mb.mul(x=products, y=signs.astype(dtype)), axes=[-1], keep_dims=False)
