"""Normalizations: BatchNormalization, InstanceNormalization, LayerNormalization,
GroupNormalization, LpNormalization, LRN, MeanVarianceNormalization, RMSNormalization.

Native MIL ops where one exists (batch_norm, instance_norm, layer_norm, local_response_norm);
constant parameters are folded at conversion time (numpy, float64) and cast to ``x``'s dtype,
and an identity affine (scale 1, bias 0) emits no op.

Spec changes read: BatchNormalization 7 (spatial), 9 (spatial removed), 14 (training_mode),
15 (scale/bias and mean/var types split).  InstanceNormalization 6, 22 (types).
LayerNormalization 17.  GroupNormalization 18 (scale/bias per group), 21 (per channel,
stash_type).  LpNormalization 1, 22.  LRN 1, 13.  MeanVarianceNormalization 9, 13.
RMSNormalization 23.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.ops.conv_pool import static_dims
from pipeline.lowering.registry import composite_op, onnx_op

log = logging.getLogger(__name__)


def _param(
    ctx: LowerContext, x: Any, value: np.ndarray, shape: tuple[int, ...] | None = None
) -> Any:
    """A folded parameter as a constant of ``x``'s dtype (optionally reshaped)."""
    arr = np.asarray(value, np.float64)
    if shape is not None:
        arr = arr.reshape(shape)
    return ctx.const(arr.astype(ctx.np_dtype(x)))


def _affine(ctx: LowerContext, y: Any, scale: Any, bias: Any, shape: tuple[int, ...]) -> Any:
    """y * scale + bias with the parameters reshaped to ``shape``; skips an identity constant."""
    for var, op, neutral in ((scale, "mul", 1.0), (bias, "add", 0.0)):
        if var is None:
            continue
        val = ctx.value_of(var)
        if val is not None:
            if np.all(val == neutral):
                continue
            operand = _param(ctx, y, val, shape)
        else:
            operand = ctx.mb.reshape(
                x=ctx.cast(var, ctx.np_dtype(y)), shape=np.array(shape, np.int32)
            )
        y = getattr(ctx.mb, op)(x=y, y=operand)
    return y


def _channel_shape(x: Any) -> tuple[int, ...]:
    return (-1,) + (1,) * (x.rank - 2)


def _eps(node: Node, default: float = 1e-5) -> float:
    return float(node.attrs.get("epsilon", default))


@onnx_op("BatchNormalization", since=7)
def batch_normalization(ctx: LowerContext, node: Node) -> Any:
    """y = scale * (x - mean) / sqrt(var + epsilon) + B, per channel (axis 1).  MIL: batch_norm.

    Ranks other than 3-5, opset 7's spatial=0 and run-time statistics become y = x * a + b with
    a, b folded (mul, add), or the explicit formula (sub, add, rsqrt, mul, mul, add) when dynamic.
    Limits: training_mode=1 and the training outputs (running/saved statistics) are unsupported.
    """
    if int(node.attrs.get("training_mode", 0)) or any(node.output_names[1:]):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: training-mode batch normalization has no Core ML inference "
            "equivalent; export the model in eval() mode"
        )
    x = node.input(0)
    params = [node.input(i) for i in range(1, 5)]
    values = [ctx.value_of(p) for p in params]
    eps = _eps(node)
    spatial = int(node.attrs.get("spatial", 1))
    shape = _channel_shape(x) if spatial else (1,) + tuple(static_dims(x) or [])[1:]
    if all(v is not None for v in values):
        scale, bias, mean, var = (np.asarray(v, np.float64) for v in values)
        if 3 <= x.rank <= 5 and spatial:
            dt = ctx.np_dtype(x)
            return ctx.mb.batch_norm(
                x=x,
                mean=ctx.const(mean.astype(dt)),
                variance=ctx.const(var.astype(dt)),
                gamma=ctx.const(scale.astype(dt)),
                beta=ctx.const(bias.astype(dt)),
                epsilon=ctx.scalar_like(x, eps),
            )
        a = scale / np.sqrt(var + eps)
        b = bias - mean * a
        return ctx.mb.add(x=ctx.mb.mul(x=x, y=_param(ctx, x, a, shape)), y=_param(ctx, x, b, shape))
    dt = ctx.np_dtype(x)
    scale, bias, mean, var = (
        ctx.mb.reshape(x=ctx.cast(p, dt), shape=np.array(shape, np.int32)) for p in params
    )
    inv = ctx.mb.rsqrt(x=var, epsilon=ctx.scalar_like(x, eps))
    centered = ctx.mb.sub(x=x, y=mean)
    return ctx.mb.add(x=ctx.mb.mul(x=centered, y=ctx.mb.mul(x=inv, y=scale)), y=bias)


@onnx_op("InstanceNormalization", since=6)
def instance_normalization(ctx: LowerContext, node: Node) -> Any:
    """y = scale[c] * (x - mean_nc) / sqrt(var_nc + epsilon) + B[c], stats over spatial axes.  MIL: instance_norm.

    Rank 5 or run-time scale/B: layer_norm over the spatial axes, then mul / add per channel.
    """
    x, scale, bias = node.input(0), node.input(1), node.input(2)
    eps = _eps(node)
    if x.rank < 3:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: needs an input of rank >= 3 (N, C, spatial...)"
        )
    s_val, b_val = ctx.value_of(scale), ctx.value_of(bias)
    if x.rank <= 4 and s_val is not None and b_val is not None:
        dt = ctx.np_dtype(x)
        return ctx.mb.instance_norm(
            x=x,
            gamma=ctx.const(s_val.astype(dt)),
            beta=ctx.const(b_val.astype(dt)),
            epsilon=ctx.scalar_like(x, eps),
        )
    y = ctx.mb.layer_norm(x=x, axes=list(range(2, x.rank)), epsilon=ctx.scalar_like(x, eps))
    return _affine(ctx, y, scale, bias, _channel_shape(x))


def _norm_axes(node: Node, x: Any) -> list[int]:
    rank = x.rank
    axis = int(node.attrs.get("axis", -1))
    if not -rank <= axis < rank:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: axis={axis} out of range for rank {rank}; fix the model"
        )
    return list(range(axis % rank, rank))


def _normalized_shape(node: Node, x: Any, axes: list[int]) -> tuple[int, ...]:
    dims = list(x.shape)
    picked = [dims[a] for a in axes]
    if not all(isinstance(d, (int, np.integer)) for d in picked):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: the normalized dims {picked} must be static to fold the "
            "scale; fix the input shape"
        )
    return tuple(int(d) for d in picked)


@composite_op("LayerNormalization", since=17)
def layer_normalization(ctx: LowerContext, node: Node) -> Any:
    """y = (x - E[x]) / sqrt(Var[x] + epsilon) * scale + B over axes [axis, rank).  MIL: layer_norm.

    With the Mean / InvStdDev outputs requested: reduce_mean, sub, square, reduce_mean, rsqrt,
    mul, mul, add (the statistics themselves are outputs; they are cast to fp32 per stash_type).
    Limits: fp16 inputs are normalized in fp16 on device (stash_type is not honoured there).
    """
    x, scale, bias = node.input(0), node.input(1), node.input(2)
    axes = _norm_axes(node, x)
    eps = ctx.scalar_like(x, _eps(node))
    want_stats = any(node.output_names[1:])
    if not want_stats:
        s_val = ctx.value_of(scale)
        b_val = ctx.value_of(bias)
        if s_val is not None and (bias is None or b_val is not None):
            shape = _normalized_shape(node, x, axes)
            dt = ctx.np_dtype(x)
            gamma = np.broadcast_to(s_val, shape).astype(dt)
            kwargs: dict[str, Any] = {
                "x": x,
                "axes": axes,
                "epsilon": eps,
                "gamma": ctx.const(gamma),
            }
            if b_val is not None:
                kwargs["beta"] = ctx.const(np.broadcast_to(b_val, shape).astype(dt))
            return ctx.mb.layer_norm(**kwargs)
        y = ctx.mb.layer_norm(x=x, axes=axes, epsilon=eps)
        return _affine_broadcast(ctx, y, scale, bias)
    mean = ctx.mb.reduce_mean(x=x, axes=axes, keep_dims=True)
    centered = ctx.mb.sub(x=x, y=mean)
    var = ctx.mb.reduce_mean(x=ctx.mb.square(x=centered), axes=axes, keep_dims=True)
    inv = ctx.mb.rsqrt(x=var, epsilon=eps)
    y = _affine_broadcast(ctx, ctx.mb.mul(x=centered, y=inv), scale, bias)
    stash = np.float32 if int(node.attrs.get("stash_type", 1)) == 1 else ctx.np_dtype(x)
    return y, ctx.cast(mean, stash), ctx.cast(inv, stash)


def _affine_broadcast(ctx: LowerContext, y: Any, scale: Any, bias: Any) -> Any:
    """y * scale + bias with ONNX (numpy) broadcasting of the parameters as given."""
    for var, op in ((scale, "mul"), (bias, "add")):
        if var is not None:
            y = getattr(ctx.mb, op)(x=y, y=ctx.cast(var, ctx.np_dtype(y)))
    return y


@composite_op("GroupNormalization", since=18)
def group_normalization_v18(ctx: LowerContext, node: Node) -> Any:
    """y = scale[g] * normalize over (channels of group g, spatial) + bias[g].  MIL: reshape, layer_norm, mul, add, reshape.

    Opset 18: scale and bias are per group, applied on the [N, G, C/G*S] view before reshaping back.
    """
    return _group_norm(ctx, node, per_group=True)


@composite_op("GroupNormalization", since=21)
def group_normalization_v21(ctx: LowerContext, node: Node) -> Any:
    """y = scale[c] * normalize over (channels of c's group, spatial) + bias[c].  MIL: reshape, layer_norm, reshape, mul, add.

    Opset 21: scale and bias are per channel (opset 18's per-group form was a spec bug).
    Limits: stash_type is not honoured for fp16 inputs (normalized in fp16 on device).
    """
    return _group_norm(ctx, node, per_group=False)


def _group_norm(ctx: LowerContext, node: Node, per_group: bool) -> Any:
    x, scale, bias = node.input(0), node.input(1), node.input(2)
    groups = int(node.attrs["num_groups"])
    dims = list(x.shape)
    rest = dims[1:]
    if x.rank < 2 or not all(isinstance(d, (int, np.integer)) for d in rest):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: channels and spatial sizes must be static; fix the input shape"
        )
    channels = int(rest[0])
    if groups <= 0 or channels % groups:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: {channels} channels are not divisible by num_groups={groups}"
        )
    batch = dims[0] if isinstance(dims[0], (int, np.integer)) else -1
    per = channels // groups * math.prod(int(d) for d in rest[1:])
    grouped = ctx.mb.reshape(x=x, shape=np.array([batch, groups, per], np.int32))
    y = ctx.mb.layer_norm(x=grouped, axes=[2], epsilon=ctx.scalar_like(x, _eps(node)))
    if per_group:
        y = _affine(ctx, y, scale, bias, (groups, 1))
        return ctx.mb.reshape(x=y, shape=np.array([batch] + [int(d) for d in rest], np.int32))
    y = ctx.mb.reshape(x=y, shape=np.array([batch] + [int(d) for d in rest], np.int32))
    return _affine(ctx, y, scale, bias, _channel_shape(x))


@composite_op("LpNormalization", since=1)
def lp_normalization(ctx: LowerContext, node: Node) -> Any:
    """y = x / ||x||_p along axis (p = 1 or 2), 0 where the norm is 0.  MIL: reduce_l2_norm /
    reduce_l1_norm, equal, select, real_div.

    MIL l2_norm normalizes the last three axes together, not one axis, so it does not fit.  A zero
    norm is replaced by 1 with select (x is all zeros there, so y = 0 as the spec says); clamping
    with maximum(norm, tiny) would save an op but is inexact for subnormal norms and its constant
    underflows to 0 at fp16 precision.
    """
    x = node.input(0)
    p = int(node.attrs.get("p", 2))
    if p not in (1, 2):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: p={p}; ONNX allows only 1 or 2, fix the model"
        )
    axis = int(node.attrs.get("axis", -1))
    if not -x.rank <= axis < x.rank:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: axis={axis} out of range for rank {x.rank}"
        )
    reducer = ctx.mb.reduce_l2_norm if p == 2 else ctx.mb.reduce_l1_norm
    norm = reducer(x=x, axes=[axis % x.rank], keep_dims=True)
    is_zero = ctx.mb.equal(x=norm, y=ctx.scalar_like(x, 0))
    safe = ctx.mb.select(cond=is_zero, a=ctx.scalar_like(x, 1), b=norm)
    return ctx.mb.real_div(x=x, y=safe)


@onnx_op("LRN", since=1)
def lrn(ctx: LowerContext, node: Node) -> Any:
    """y = x / (bias + alpha/size * sum of x^2 over a window of channels)^beta.  MIL: local_response_norm.

    Limits: rank 3-4 inputs (the MIL op's domain).
    """
    x = node.input(0)
    if not 3 <= x.rank <= 4:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: MIL local_response_norm takes rank 3-4, got {x.rank}"
        )
    return ctx.mb.local_response_norm(
        x=x,
        size=np.int32(node.attrs["size"]),
        alpha=ctx.scalar_like(x, node.attrs.get("alpha", 1e-4)),
        beta=ctx.scalar_like(x, node.attrs.get("beta", 0.75)),
        k=ctx.scalar_like(x, node.attrs.get("bias", 1.0)),
    )


@onnx_op("MeanVarianceNormalization", since=9)
def mean_variance_normalization(ctx: LowerContext, node: Node) -> Any:
    """y = (x - E[x]) / (sqrt(Var[x]) + 1e-9) over axes.  MIL: layer_norm (epsilon 1e-18 under the root).

    sqrt(var + 1e-18) equals sqrt(var) + 1e-9 where var is 0 and is within 1e-9 of it elsewhere.
    Limits: in fp16 the epsilon underflows to 0, so a constant slice gives NaN instead of 0.
    """
    x = node.input(0)
    axes = [int(a) % x.rank for a in node.attrs.get("axes", [0, 2, 3])]
    return ctx.mb.layer_norm(x=x, axes=sorted(axes), epsilon=ctx.scalar_like(x, 1e-18))


@composite_op("RMSNormalization", since=23)
def rms_normalization(ctx: LowerContext, node: Node) -> Any:
    """y = x / sqrt(mean(x^2 over [axis, rank)) + epsilon) * scale.  MIL: reduce_sum_square, rsqrt, mul, mul.

    mean(x^2) + eps = (sum(x^2) + N*eps) / N, so rsqrt's own epsilon takes N*eps and sqrt(N) folds
    into a constant scale: four ops (MIL has no RMS norm, and layer_norm would subtract the mean).
    Limits: fp16 programs sum the squares in fp16 (overflow past 65504); the scale's sqrt(N)
    is a separate mul when the scale is computed at run time.
    """
    x, scale = node.input(0), node.input(1)
    axes = _norm_axes(node, x)
    count = math.prod(_normalized_shape(node, x, axes))
    ss = ctx.mb.reduce_sum_square(x=x, axes=axes, keep_dims=True)
    inv = ctx.mb.rsqrt(x=ss, epsilon=ctx.scalar_like(x, count * _eps(node)))
    y = ctx.mb.mul(x=x, y=inv)
    s_val = ctx.value_of(scale)
    if s_val is not None:
        return ctx.mb.mul(
            x=y,
            y=ctx.const((np.asarray(s_val, np.float64) * math.sqrt(count)).astype(ctx.np_dtype(x))),
        )
    y = ctx.mb.mul(x=y, y=ctx.scalar_like(x, math.sqrt(count)))
    return ctx.mb.mul(x=y, y=ctx.cast(scale, ctx.np_dtype(x)))
