"""Activations: Relu, LeakyRelu, PRelu, Elu, Selu, Celu, Gelu, HardSigmoid, HardSwish, Sigmoid,
Softplus, Softsign, Tanh, ThresholdedRelu, Mish, Shrink.

(Softmax, LogSoftmax and Hardmax live in ``softmax.py``.)

Spec changes read: Relu 6, 13, 14 (integer types); LeakyRelu 6, 16; PRelu 7 (unidirectional
broadcast of slope), 9, 16; Elu/Selu/HardSigmoid/Sigmoid/Tanh/Softplus 6, 13, 22 (types);
Celu 12; Gelu 20 (approximate none|tanh); HardSwish 14; ThresholdedRelu 10; Mish 18; Shrink 9.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.registry import composite_op, onnx_op

log = logging.getLogger(__name__)


def _unary(onnx_name: str, mil_name: str, since: int, math: str) -> None:
    def handler(ctx: LowerContext, node: Node) -> Any:
        return getattr(ctx.mb, mil_name)(x=node.input(0))

    handler.__name__ = mil_name
    handler.__doc__ = f"y = {math}.  MIL: {mil_name}."
    onnx_op(onnx_name, since=since)(handler)


_unary("Sigmoid", "sigmoid", 6, "1 / (1 + exp(-x))")
_unary("Tanh", "tanh", 6, "tanh(x)")
_unary("Softplus", "softplus", 1, "ln(1 + exp(x))")
_unary("Softsign", "softsign", 1, "x / (1 + |x|)")


@onnx_op("Relu", since=6)
def relu(ctx: LowerContext, node: Node) -> Any:
    """y = max(x, 0).  MIL: relu; integer x (opset 14): maximum(x, 0)."""
    x = node.input(0)
    if ctx.is_float(x):
        return ctx.mb.relu(x=x)
    return ctx.mb.maximum(x=x, y=ctx.scalar_like(x, 0))


@onnx_op("LeakyRelu", since=6)
def leaky_relu(ctx: LowerContext, node: Node) -> Any:
    """y = x if x >= 0 else alpha * x.  MIL: leaky_relu."""
    x = node.input(0)
    return ctx.mb.leaky_relu(x=x, alpha=ctx.scalar_like(x, node.attrs["alpha"]))


def _channel_slope(x: Any, slope: np.ndarray) -> np.ndarray | None:
    """The per-channel vector of a constant slope that varies only along axis 1 of a rank-4 x, else None.

    MIL's prelu takes per-channel slopes on rank-4 inputs only (rank 3 and 5 need one value).
    """
    rank = x.rank
    if rank != 4 or slope.ndim > rank:
        return None
    full = slope.reshape((1,) * (rank - slope.ndim) + slope.shape)
    if any(d != 1 for i, d in enumerate(full.shape) if i != 1):
        return None
    channels = x.shape[1]
    if not isinstance(channels, int) or full.shape[1] not in (1, channels):
        return None
    return np.broadcast_to(full.reshape(-1), (channels,)).copy()


@onnx_op("PRelu", since=7)
def prelu(ctx: LowerContext, node: Node) -> Any:
    """y = x if x >= 0 else slope * x, slope broadcast to x.  MIL: leaky_relu (one slope), prelu (per channel), else select(less, mul).

    A single slope value becomes leaky_relu; a constant slope that varies along axis 1 of a rank-4
    input becomes prelu, both single ops that run on the Neural Engine.  Any other slope
    (dynamic, or varying along other axes) is the composite select(x < 0, x * slope, x).
    """
    x, slope = node.input(0), node.input(1)
    value = ctx.value_of(slope)
    dtype = ctx.np_dtype(x)
    if value is not None and ctx.is_float(x) and value.ndim <= x.rank:
        if value.size >= 1 and np.all(value == value.reshape(-1)[0]):
            return ctx.mb.leaky_relu(x=x, alpha=dtype.type(value.reshape(-1)[0]))
        per_channel = _channel_slope(x, value)
        if per_channel is not None:
            return ctx.mb.prelu(x=x, alpha=ctx.const(per_channel.astype(dtype)))
    mb = ctx.mb
    scaled = mb.mul(x=x, y=slope)
    return mb.select(cond=mb.less(x=x, y=ctx.scalar_like(x, 0)), a=scaled, b=x)


@onnx_op("Elu", since=6)
def elu(ctx: LowerContext, node: Node) -> Any:
    """y = x if x > 0 else alpha * (exp(x) - 1).  MIL: elu."""
    x = node.input(0)
    return ctx.mb.elu(x=x, alpha=ctx.scalar_like(x, node.attrs["alpha"]))


@composite_op("Selu", since=6)
def selu(ctx: LowerContext, node: Node) -> Any:
    """y = gamma * (x if x > 0 else alpha * (exp(x) - 1)).  MIL: elu, mul (MIL has no selu)."""
    x = node.input(0)
    inner = ctx.mb.elu(x=x, alpha=ctx.scalar_like(x, node.attrs["alpha"]))
    return ctx.mb.mul(x=inner, y=ctx.scalar_like(x, node.attrs["gamma"]))


@composite_op("Celu", since=12)
def celu(ctx: LowerContext, node: Node) -> Any:
    """y = max(0, x) + min(0, alpha * (exp(x / alpha) - 1)) = alpha * elu(x / alpha, 1).  MIL: elu (alpha = 1), else mul, elu, mul."""
    x = node.input(0)
    alpha = float(node.attrs["alpha"])
    if alpha == 0.0:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: alpha=0 divides by zero; fix the model"
        )
    if alpha == 1.0:
        return ctx.mb.elu(x=x, alpha=ctx.scalar_like(x, 1.0))
    inner = ctx.mb.elu(
        x=ctx.mb.mul(x=x, y=ctx.scalar_like(x, 1.0 / alpha)), alpha=ctx.scalar_like(x, 1.0)
    )
    return ctx.mb.mul(x=inner, y=ctx.scalar_like(x, alpha))


@onnx_op("Gelu", since=20)
def gelu(ctx: LowerContext, node: Node) -> Any:
    """y = x * Phi(x) (approximate='none') or its tanh form.  MIL: gelu mode EXACT / TANH_APPROXIMATION."""
    approximate = node.attrs.get("approximate", "none")
    modes = {"none": "EXACT", "tanh": "TANH_APPROXIMATION"}
    if approximate not in modes:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: approximate={approximate!r} is not 'none' or 'tanh'; fix the model"
        )
    return ctx.mb.gelu(x=node.input(0), mode=modes[approximate])


@onnx_op("HardSigmoid", since=6)
def hard_sigmoid(ctx: LowerContext, node: Node) -> Any:
    """y = max(0, min(1, alpha * x + beta)).  MIL: sigmoid_hard (same formula)."""
    x = node.input(0)
    return ctx.mb.sigmoid_hard(
        x=x,
        alpha=ctx.scalar_like(x, node.attrs["alpha"]),
        beta=ctx.scalar_like(x, node.attrs["beta"]),
    )


@composite_op("HardSwish", since=14)
def hard_swish(ctx: LowerContext, node: Node) -> Any:
    """y = x * max(0, min(1, x / 6 + 1/2)).  MIL: sigmoid_hard, mul (MIL has no hard swish)."""
    x = node.input(0)
    gate = ctx.mb.sigmoid_hard(
        x=x, alpha=ctx.scalar_like(x, 1.0 / 6.0), beta=ctx.scalar_like(x, 0.5)
    )
    return ctx.mb.mul(x=x, y=gate)


@onnx_op("ThresholdedRelu", since=10)
def thresholded_relu(ctx: LowerContext, node: Node) -> Any:
    """y = x if x > alpha else 0.  MIL: thresholded_relu with alpha' = the next float above alpha.

    MIL keeps x >= alpha where ONNX keeps x > alpha; for x of the same float type, x >= next(alpha)
    is exactly x > alpha, so one native op reproduces ONNX at the boundary too.
    """
    x = node.input(0)
    dtype = ctx.np_dtype(x)
    alpha = dtype.type(node.attrs["alpha"])
    return ctx.mb.thresholded_relu(x=x, alpha=np.nextafter(alpha, dtype.type(np.inf)))


@composite_op("Mish", since=18)
def mish(ctx: LowerContext, node: Node) -> Any:
    """y = x * tanh(softplus(x)).  MIL: softplus, tanh, mul (MIL has no mish)."""
    x = node.input(0)
    return ctx.mb.mul(x=x, y=ctx.mb.tanh(x=ctx.mb.softplus(x=x)))


@composite_op("Shrink", since=9)
def shrink(ctx: LowerContext, node: Node) -> Any:
    """y = x + bias if x < -lambd, x - bias if x > lambd, else 0.

    MIL: bias = lambd (soft shrink): sub(x, clip(x, -l, l)); bias = 0 (hard shrink):
    select(|x| > l, x, 0); otherwise t = x - clip(x, -l, l) then t + sign(t) * (l - bias).
    Limits: float inputs and lambd >= 0 only.
    """
    x = node.input(0)
    if not ctx.is_float(x):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: integer Shrink is not lowered; cast the input to float"
        )
    mb = ctx.mb
    lambd, bias = float(node.attrs["lambd"]), float(node.attrs["bias"])
    if bias == 0.0:
        keep = mb.greater(x=mb.abs(x=x), y=ctx.scalar_like(x, lambd))
        return mb.select(cond=keep, a=x, b=ctx.scalar_like(x, 0.0))
    if lambd < 0:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: lambd={lambd} < 0 is not lowered; use lambd >= 0"
        )
    if lambd > 0:
        t = mb.sub(
            x=x, y=mb.clip(x=x, alpha=ctx.scalar_like(x, -lambd), beta=ctx.scalar_like(x, lambd))
        )
    else:
        t = x
    if bias == lambd:
        return t
    return mb.add(x=t, y=mb.mul(x=mb.sign(x=t), y=ctx.scalar_like(x, lambd - bias)))
