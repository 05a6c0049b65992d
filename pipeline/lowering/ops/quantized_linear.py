"""Integer and quantized products: MatMulInteger, ConvInteger, QLinearMatMul, QLinearConv.

Exactness.  ONNX accumulates ``(a - a_zp) * (b - b_zp)`` in int32.  Here:

* matrix products run as an int32 ``matmul`` (MIL allows int32): exact, like onnxruntime;
* convolutions run as an fp32 ``conv`` (MIL conv is float only) on the centred operands, which
  are integers of at most 255 in magnitude.  Every partial sum is an integer, and fp32 holds
  integers exactly up to 2**24, so the result is exact when
  ``K * max|a - a_zp| * max|w - w_zp| + max|bias| < 2**24`` (K = input channels per group x
  kernel size; e.g. 258 uint8 taps at worst, 1024 for symmetric int8).  Beyond that bound the
  lowering warns: large sums may round by one unit.

QLinear* then requantize like onnxruntime: ``y = saturate(round_half_even(acc * m) + y_zp)``
with ``m = a_scale * b_scale / y_scale`` computed in fp32 at conversion time when constant.

Spec changes read: MatMulInteger 10, ConvInteger 10, QLinearConv 10, QLinearMatMul 10, 21
(fp16 scales, float8 types).
Limits: float8 operands are unsupported.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
from onnx import TensorProto

from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.ops.conv_pool import conv
from pipeline.lowering.ops.quantization import quant_range, quantize_to_int32
from pipeline.lowering.registry import composite_op

log = logging.getLogger(__name__)

#: fp32 represents every integer of magnitude below this exactly.
_FP32_EXACT = 1 << 24


def _centred(ctx: LowerContext, node: Node, i: int, zp_i: int, zp_shape: list[int] | None) -> tuple[Any, int]:
    """(input i - its zero point, a bound of its magnitude); numpy when both are constant.

    ``zp_shape`` reshapes a vector zero point (per row / per channel); None keeps it as is.
    """
    elem = ctx.onnx_type(node.input_names[i]) or TensorProto.UINT8
    lo, hi = quant_range(node, elem)
    var, val = node.input(i), node.const_input(i)
    zp = node.const_input(zp_i) if node.has_input(zp_i) else np.zeros((), np.int32)
    if zp is None:
        # A run-time zero point is still within the type's range.
        zvar = node.input(zp_i)
        if zp_shape is not None and zvar.rank == 1 and zvar.shape[0] != 1:
            zvar = ctx.mb.reshape(x=zvar, shape=zp_shape)
        return ctx.mb.sub(x=var, y=zvar), hi - lo
    zp = zp.astype(np.int32)
    if zp.size > 1 and zp_shape is not None:
        zp = zp.reshape(zp_shape)
    elif zp.size == 1:
        zp = zp.reshape(())
    if val is not None:
        centred = val.astype(np.int32) - zp
        return centred, int(np.abs(centred).max(initial=0))
    bound = int(max(np.abs(lo - zp).max(), np.abs(hi - zp).max()))
    if not zp.any():
        return var, bound
    return ctx.mb.sub(x=var, y=ctx.const(zp)), bound


def _as_float(ctx: LowerContext, value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ctx.const(value.astype(np.float32))
    return ctx.cast(value, np.float32)


def _as_int(ctx: LowerContext, value: Any) -> Any:
    return ctx.const(value) if isinstance(value, np.ndarray) else value


def _multiplier(ctx: LowerContext, node: Node, scales: list[tuple[int, list[int] | None]]) -> Any:
    """m = s0 * s1 / s2 in fp32 (constants fold; vectors take the given shapes)."""
    vals = [node.const_input(i) for i, _ in scales]
    if all(v is not None for v in vals):
        shaped = []
        for v, (_, shape) in zip(vals, scales):
            f = np.asarray(v, np.float32)
            shaped.append(f.reshape(()) if f.size == 1 else f.reshape(shape) if shape is not None else f)
        return np.asarray((shaped[0] * shaped[1]) / shaped[2], np.float32)
    parts = []
    for i, shape in scales:
        var = ctx.cast(node.input(i), np.float32)
        if shape is not None and var.rank == 1 and var.shape[0] != 1:
            var = ctx.mb.reshape(x=var, shape=shape)
        parts.append(var)
    return ctx.mb.real_div(x=ctx.mb.mul(x=parts[0], y=parts[1]), y=parts[2])


def _requantize(ctx: LowerContext, node: Node, acc: Any, m: Any, zp_i: int) -> Any:
    """saturate(round(acc * m) + y_zp) as int32 values of the output's 8-bit type."""
    elem = ctx.onnx_type(node.input_names[zp_i]) or ctx.onnx_type(node.output_name(0)) or TensorProto.UINT8
    lo, hi = quant_range(node, elem)
    scaled = ctx.mb.mul(x=ctx.cast(acc, np.float32), y=m)
    zp = node.const_input(zp_i)
    zp_val = zp.astype(np.float32).reshape(()) if zp is not None else ctx.cast(node.input(zp_i), np.float32)
    return quantize_to_int32(ctx, ctx.mb.round(x=scaled), zp_val, lo, hi)


def _int_matmul(ctx: LowerContext, node: Node, a_i: int, a_zp: int, b_i: int, b_zp: int) -> Any:
    """(A - a_zp) @ (B - b_zp) as an exact int32 matmul; a vector a_zp runs per row of A."""
    a, _ = _centred(ctx, node, a_i, a_zp, [-1, 1])
    b, _ = _centred(ctx, node, b_i, b_zp, None)
    return ctx.mb.matmul(x=_as_int(ctx, a), y=_as_int(ctx, b))


@composite_op("MatMulInteger", since=10)
def matmul_integer(ctx: LowerContext, node: Node) -> Any:
    """Y = (A - a_zp) @ (B - b_zp) in int32 (numpy matmul broadcasting).

    MIL: sub (skipped for zero or constant-folded zero points), matmul in int32 (exact).
    """
    return _int_matmul(ctx, node, 0, 2, 1, 3)


@composite_op("QLinearMatMul", since=10)
def qlinear_matmul(ctx: LowerContext, node: Node) -> Any:
    """y = saturate(round((a - a_zp) @ (b - b_zp) * a_scale * b_scale / y_scale) + y_zp).

    MIL: sub, matmul (int32, exact), cast, mul, round, add, clip, cast.  Per-row a_scale and
    per-column b_scale broadcast like onnxruntime's.  Limits: float8 types (opset 21).
    """
    acc = _int_matmul(ctx, node, 0, 2, 3, 5)
    m = _multiplier(ctx, node, [(1, [-1, 1]), (4, None), (6, None)])
    return _requantize(ctx, node, acc, _as_float(ctx, m) if isinstance(m, np.ndarray) else m, 7)


def _int_conv(ctx: LowerContext, node: Node, x_i: int, x_zp: int, w_i: int, w_zp: int, bias: Any) -> Any:
    """conv(x - x_zp, w - w_zp) + bias computed in fp32 (exact under the module's bound)."""
    nsp = node.input(x_i).rank - 2
    x, x_bound = _centred(ctx, node, x_i, x_zp, None)
    w, w_bound = _centred(ctx, node, w_i, w_zp, [-1] + [1] * (nsp + 1))
    w_shape = list(node.input(w_i).shape)
    taps = int(np.prod([int(d) for d in w_shape[1:]])) if all(isinstance(d, (int, np.integer)) for d in w_shape[1:]) else None
    bias_val = ctx.value_of(bias) if bias is not None else None
    bias_bound = int(np.abs(bias_val).max(initial=0)) if bias_val is not None else 0
    if taps is None or bias is not None and bias_val is None or taps * x_bound * w_bound + bias_bound >= _FP32_EXACT:
        ctx.warn(
            f"{node.describe()}: integer sums may exceed 2**24 and round in the fp32 conv "
            "(Core ML convolutions are float only)"
        )
    fbias = None
    if bias is not None:
        fbias = ctx.const(bias_val.astype(np.float32)) if bias_val is not None else ctx.cast(bias, np.float32)
    float_node = dataclasses.replace(node, inputs=[_as_float(ctx, x), _as_float(ctx, w), fbias])
    return conv(ctx, float_node)


@composite_op("ConvInteger", since=10)
def conv_integer(ctx: LowerContext, node: Node) -> Any:
    """y = conv(x - x_zp, w - w_zp) in int32 (Conv's attributes).

    MIL: sub, cast, conv (fp32: exact under the module's bound), cast; a constant weight folds.
    """
    return ctx.cast(_int_conv(ctx, node, 0, 2, 1, 3, None), np.int32)


@composite_op("QLinearConv", since=10)
def qlinear_conv(ctx: LowerContext, node: Node) -> Any:
    """y = saturate(round((conv(x - x_zp, w - w_zp) + B) * x_scale * w_scale / y_scale) + y_zp).

    MIL: sub, cast, conv with the bias (fp32, exact under the module's bound), mul, round, add,
    clip, cast; a per-channel w_scale / w_zp broadcasts over the output channels.
    """
    nsp = node.input(0).rank - 2
    acc = _int_conv(ctx, node, 0, 2, 3, 5, node.input(8))
    m = _multiplier(ctx, node, [(1, None), (4, [-1] + [1] * nsp), (6, None)])
    return _requantize(ctx, node, acc, _as_float(ctx, m) if isinstance(m, np.ndarray) else m, 7)
