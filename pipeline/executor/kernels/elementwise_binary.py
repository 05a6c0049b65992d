"""Kernels of MIL's elementwise binary ops (coremltools defs: elementwise_binary.py).

Ops: add, equal, floor_div, greater, greater_equal, less, less_equal, logical_and, logical_or,
logical_xor, maximum, minimum, mod, mul, not_equal, real_div, pow, sub.

All broadcast numpy-style.  Mixed operand dtypes follow MIL's promotion: a float with an int is
the float type (fp16 + int32 -> fp16), otherwise the wider type (fp16 + fp32 -> fp32); both
operands are converted first so an fp16 program computes in fp16.  No opset changed these ops.
"""

from __future__ import annotations

import numpy as np

from pipeline.executor.kernels.registry import mil_kernel


def _common(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both operands in MIL's promoted dtype."""
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype == y.dtype:
        return x, y
    x_float = np.issubdtype(x.dtype, np.floating)
    y_float = np.issubdtype(y.dtype, np.floating)
    if x_float and not y_float:
        dtype = x.dtype
    elif y_float and not x_float:
        dtype = y.dtype
    else:
        dtype = np.promote_types(x.dtype, y.dtype)
    return x.astype(dtype, copy=False), y.astype(dtype, copy=False)


def _is_int(a: np.ndarray) -> bool:
    return np.issubdtype(a.dtype, np.integer)


@mil_kernel("add")
def add(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = x + y."""
    return np.add(*_common(x, y))


@mil_kernel("sub")
def sub(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = x - y."""
    return np.subtract(*_common(x, y))


@mil_kernel("mul")
def mul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = x * y."""
    return np.multiply(*_common(x, y))


@mil_kernel("real_div")
def real_div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = x / y; on int32 operands the quotient is truncated toward zero (C division)."""
    a, b = _common(x, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        if _is_int(a):
            q = np.trunc(a.astype(np.float64) / b.astype(np.float64))
            return np.nan_to_num(q, nan=0.0, posinf=0.0, neginf=0.0).astype(a.dtype)
        return np.true_divide(a, b)


@mil_kernel("floor_div")
def floor_div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = floor(x / y)."""
    a, b = _common(x, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.floor_divide(a, b)


@mil_kernel("mod")
def mod(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = x - floor(x / y) * y: the result takes the sign of the divisor (Python's ``%``)."""
    a, b = _common(x, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.mod(a, b)


@mil_kernel("pow")
def pow_(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = x ^ y; int32 with a negative exponent gives the truncated real power."""
    a, b = _common(x, y)
    if _is_int(a):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            real = np.trunc(np.power(a.astype(np.float64), b.astype(np.float64)))
        return np.nan_to_num(real, nan=0.0, posinf=0.0, neginf=0.0).astype(a.dtype)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return np.power(a, b)


@mil_kernel("maximum")
def maximum(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = x > y ? x : y."""
    return np.maximum(*_common(x, y))


@mil_kernel("minimum")
def minimum(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = x > y ? y : x."""
    return np.minimum(*_common(x, y))


@mil_kernel("equal")
def equal(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = x == y (bool)."""
    return np.equal(*_common(x, y))


@mil_kernel("not_equal")
def not_equal(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = x != y (bool)."""
    return np.not_equal(*_common(x, y))


@mil_kernel("greater")
def greater(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = x > y (bool)."""
    return np.greater(*_common(x, y))


@mil_kernel("greater_equal")
def greater_equal(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = x >= y (bool)."""
    return np.greater_equal(*_common(x, y))


@mil_kernel("less")
def less(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = x < y (bool)."""
    return np.less(*_common(x, y))


@mil_kernel("less_equal")
def less_equal(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = x <= y (bool)."""
    return np.less_equal(*_common(x, y))


@mil_kernel("logical_and")
def logical_and(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = x and y (bool)."""
    return np.logical_and(x, y)


@mil_kernel("logical_or")
def logical_or(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = x or y (bool)."""
    return np.logical_or(x, y)


@mil_kernel("logical_xor")
def logical_xor(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = x xor y (bool)."""
    return np.logical_xor(x, y)
