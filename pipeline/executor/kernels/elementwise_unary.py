"""Kernels of MIL's elementwise unary ops (coremltools defs: elementwise_unary.py).

Ops: abs, acos, asin, atan, atanh, ceil, clip, cos, cosh, erf, exp, exp2, floor, inverse, log,
logical_not, round, rsqrt, sign, sin, sinh, sqrt, square, tan, tanh, threshold, cast.

Precision: numpy evaluates an fp16 ufunc in fp32 and rounds once to fp16, which is what a device
does for one elementwise op, so fp16 inputs are computed and returned in fp16.  Ops with several
steps (inverse, log and rsqrt add epsilon first) compute in fp32 and round once at the end.

Opset differences: iOS17 lets the ``epsilon`` of inverse/log/rsqrt and the bounds of clip have a
dtype other than ``x`` (we cast them to ``x``'s dtype), makes clip validate ``alpha < beta`` at
build time, and adds int8/uint8/int16/uint16 to cast.  None changes the arithmetic, so each op
has one kernel from iOS15 on.
"""

from __future__ import annotations

import logging

import numpy as np

from pipeline.errors import ExecutorError
from pipeline.executor.kernels.registry import mil_kernel

log = logging.getLogger(__name__)


def _param(value: np.ndarray | float, x: np.ndarray) -> np.ndarray:
    """A scalar/tensor parameter in ``x``'s dtype (iOS17 allows it to differ)."""
    return np.asarray(value).astype(x.dtype, copy=False)


def _wide(x: np.ndarray) -> np.ndarray:
    """``x`` as fp32 for ops made of several steps, so that fp16 rounds once, at the end."""
    return x.astype(np.float32) if x.dtype != np.float32 else x


def _out(x: np.ndarray) -> np.dtype:
    """The result dtype of a float-valued op on ``x`` (fp32 for non-float inputs)."""
    return x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float32)


@mil_kernel("abs")
def abs_(x: np.ndarray) -> np.ndarray:
    """y = |x|."""
    return np.abs(x)


@mil_kernel("acos")
def acos(x: np.ndarray) -> np.ndarray:
    """y = arccos(x)."""
    return np.arccos(x)


@mil_kernel("asin")
def asin(x: np.ndarray) -> np.ndarray:
    """y = arcsin(x)."""
    return np.arcsin(x)


@mil_kernel("atan")
def atan(x: np.ndarray) -> np.ndarray:
    """y = arctan(x)."""
    return np.arctan(x)


@mil_kernel("atanh")
def atanh(x: np.ndarray) -> np.ndarray:
    """y = arctanh(x)."""
    return np.arctanh(x)


@mil_kernel("ceil")
def ceil(x: np.ndarray) -> np.ndarray:
    """y = ceil(x)."""
    return np.ceil(x)


@mil_kernel("clip")
def clip(x: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """y = min(max(x, alpha), beta)."""
    return np.minimum(np.maximum(x, _param(alpha, x)), _param(beta, x))


@mil_kernel("cos")
def cos(x: np.ndarray) -> np.ndarray:
    """y = cos(x)."""
    return np.cos(x)


@mil_kernel("cosh")
def cosh(x: np.ndarray) -> np.ndarray:
    """y = cosh(x)."""
    return np.cosh(x)


def erf_array(x: np.ndarray) -> np.ndarray:
    """Gauss error function, vectorised (torch's erf; fp16 evaluated in fp32, rounded once)."""
    import torch

    work = x.astype(np.float32) if x.dtype == np.float16 else x
    out = torch.special.erf(torch.from_numpy(np.ascontiguousarray(work))).numpy()
    return out.astype(x.dtype, copy=False)


@mil_kernel("erf")
def erf(x: np.ndarray) -> np.ndarray:
    """y = erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt."""
    return erf_array(x)


@mil_kernel("exp")
def exp(x: np.ndarray) -> np.ndarray:
    """y = e^x."""
    return np.exp(x)


@mil_kernel("exp2")
def exp2(x: np.ndarray) -> np.ndarray:
    """y = 2^x; for int32 x the result is truncated to int32 (2^-k -> 0)."""
    if np.issubdtype(x.dtype, np.integer):
        return np.trunc(np.exp2(x.astype(np.float64))).astype(x.dtype)
    return np.exp2(x)


@mil_kernel("floor")
def floor(x: np.ndarray) -> np.ndarray:
    """y = floor(x)."""
    return np.floor(x)


@mil_kernel("inverse")
def inverse(x: np.ndarray, epsilon: np.ndarray | float = 1e-4) -> np.ndarray:
    """y = 1 / (x + epsilon)."""
    work = _wide(x)
    return np.reciprocal(work + _param(epsilon, work)).astype(_out(x), copy=False)


@mil_kernel("log")
def log_(x: np.ndarray, epsilon: np.ndarray | float = 1e-45) -> np.ndarray:
    """y = ln(x + epsilon)."""
    work = _wide(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(work + _param(epsilon, work)).astype(_out(x), copy=False)


@mil_kernel("logical_not")
def logical_not(x: np.ndarray) -> np.ndarray:
    """y = not x (a number is true iff it is non-zero)."""
    return np.logical_not(x)


@mil_kernel("round")
def round_(x: np.ndarray) -> np.ndarray:
    """y = x rounded to the nearest integer, ties to even (the MIL doc: 0.5 rounds to 0)."""
    return np.round(x)


@mil_kernel("rsqrt")
def rsqrt(x: np.ndarray, epsilon: np.ndarray | float = 1e-12) -> np.ndarray:
    """y = 1 / sqrt(x + epsilon)."""
    work = _wide(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.reciprocal(np.sqrt(work + _param(epsilon, work))).astype(_out(x), copy=False)


@mil_kernel("sign")
def sign(x: np.ndarray) -> np.ndarray:
    """y = -1, 0 or 1 by the sign of x."""
    return np.sign(x)


@mil_kernel("sin")
def sin(x: np.ndarray) -> np.ndarray:
    """y = sin(x)."""
    return np.sin(x)


@mil_kernel("sinh")
def sinh(x: np.ndarray) -> np.ndarray:
    """y = sinh(x)."""
    return np.sinh(x)


@mil_kernel("sqrt")
def sqrt(x: np.ndarray) -> np.ndarray:
    """y = sqrt(x)."""
    with np.errstate(invalid="ignore"):
        return np.sqrt(x)


@mil_kernel("square")
def square(x: np.ndarray) -> np.ndarray:
    """y = x * x."""
    return np.square(x)


@mil_kernel("tan")
def tan(x: np.ndarray) -> np.ndarray:
    """y = tan(x)."""
    return np.tan(x)


@mil_kernel("tanh")
def tanh(x: np.ndarray) -> np.ndarray:
    """y = tanh(x)."""
    return np.tanh(x)


@mil_kernel("threshold")
def threshold(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """y = max(x, alpha)."""
    return np.maximum(x, _param(alpha, x))


#: MIL dtype strings accepted by cast (iOS15: int32/fp16/fp32/bool; iOS17 adds the rest).
CAST_DTYPES: dict[str, np.dtype] = {
    "bool": np.dtype(np.bool_),
    "int8": np.dtype(np.int8),
    "uint8": np.dtype(np.uint8),
    "int16": np.dtype(np.int16),
    "uint16": np.dtype(np.uint16),
    "int32": np.dtype(np.int32),
    "fp16": np.dtype(np.float16),
    "fp32": np.dtype(np.float32),
}


def cast_array(x: np.ndarray, target: np.dtype) -> np.ndarray:
    """Convert ``x`` to ``target`` the way MIL's cast does.

    Float to integer truncates toward zero and saturates at the target's range (NaN -> 0):
    Core ML leaves out-of-range casts undocumented, so we pick the well-defined behaviour
    rather than numpy's platform-dependent wrap.  Integer to narrower integer saturates too.
    Anything to bool is ``x != 0``.
    """
    if target == np.bool_:
        return np.asarray(x != 0)
    if np.issubdtype(target, np.integer):
        info = np.iinfo(target)
        if np.issubdtype(x.dtype, np.floating):
            wide = np.nan_to_num(np.trunc(x.astype(np.float64)), nan=0.0)
            return np.clip(wide, info.min, info.max).astype(target)
        if x.dtype == np.bool_:
            return x.astype(target)
        return np.clip(x.astype(np.int64), info.min, info.max).astype(target)
    return x.astype(target)


@mil_kernel("cast")
def cast(x: np.ndarray, dtype: str) -> np.ndarray:
    """y = x converted to ``dtype`` (see :func:`cast_array` for rounding and range)."""
    target = CAST_DTYPES.get(str(dtype).lower())
    if target is None:
        raise ExecutorError(
            f"execute: cast to dtype {dtype!r} is not a MIL cast type; "
            f"use one of {sorted(CAST_DTYPES)}"
        )
    return cast_array(np.asarray(x), target)
