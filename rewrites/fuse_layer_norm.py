"""Pass ``fuse_layer_norm``: written-out layer normalization -> ``LayerNormalization`` (opset 17).

Ops: ``d = x - ReduceMean(x, axes); y = d / Sqrt(ReduceMean(d**2, axes) + eps)`` (``d*d`` for
``d**2``, ``d * Reciprocal(Sqrt(..))`` for the division), optionally ``* scale`` and
``+ bias`` -> ``LayerNormalization(x, scale, bias, axis, epsilon)``.  This is what the
TorchScript exporter emits for ``nn.LayerNorm`` below opset 17.

Limits: both ReduceMeans reduce the same trailing axes with keepdims=1 (axes as attribute
before opset 18, as a constant input after); eps is a one-element constant; scale and bias are
constants whose shape equals the normalized shape (anything else would broadcast over batch
dims, which LayerNormalization cannot express).  Without a scale, a ones tensor is added
(needs static normalized dims).  Models below opset 17 are left unchanged (the op is new there).
stash_type is 1 (float32 statistics), as onnxruntime requires; for float16 inputs the fused op
is therefore at least as accurate as the written-out one.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir
from onnxscript.rewriter import pattern

from rewrites._util import (
    FLOAT_TYPES,
    absorbed_later,
    apply_rules,
    const_scalar,
    const_var,
    either,
    ensure_types,
    fusion_rule,
    is_close,
    keepdims,
    normalized_suffix,
    opset,
    param_ok,
    rank_of,
    reduce_axes,
    static_dims,
)
from rewrites.manager import register_pass

logger = logging.getLogger(__name__)

LAYER_NORM_SINCE = 17


def _normalized_parts(op, x):  # type: ignore[no-untyped-def]
    """d = x - mean and std = sqrt(mean(d**2) + eps)."""
    mean = op.ReduceMean(x, _allow_other_inputs=True, _allow_other_attributes=True,
                         _outputs=["mean"])
    d = op.Sub(x, mean)
    square = pattern.OrValue([op.Pow(d, const_var("c_two")), op.Mul(d, d)])
    var = op.ReduceMean(square, _allow_other_inputs=True, _allow_other_attributes=True,
                        _outputs=["var"])
    return d, op.Sqrt(either(op.Add, var, const_var("eps")))


def _normalized(op, x):  # type: ignore[no-untyped-def]
    d, std = _normalized_parts(op, x)
    return pattern.OrValue([op.Div(d, std), either(op.Mul, d, op.Reciprocal(std))])


def _divided(op, x):  # type: ignore[no-untyped-def]
    d, std = _normalized_parts(op, x)
    return op.Div(d, std)


def _times_reciprocal(op, x):  # type: ignore[no-untyped-def]
    d, std = _normalized_parts(op, x)
    return op.Mul(d, op.Reciprocal(std))


def _reciprocal_times(op, x):  # type: ignore[no-untyped-def]
    d, std = _normalized_parts(op, x)
    return op.Mul(op.Reciprocal(std), d)


def _scaled(op, x, scale):  # type: ignore[no-untyped-def]
    return op.Mul(_normalized(op, x), scale)


def _scaled_rev(op, x, scale):  # type: ignore[no-untyped-def]
    return op.Mul(scale, _normalized(op, x))


def _scaled_bias(op, x, scale, bias):  # type: ignore[no-untyped-def]
    return op.Add(either(op.Mul, _normalized(op, x), scale), bias)


def _bias_scaled(op, x, scale, bias):  # type: ignore[no-untyped-def]
    return op.Add(bias, either(op.Mul, _normalized(op, x), scale))


def _check(context, x: ir.Value, mean: ir.Value, var: ir.Value, eps: ir.Value,  # type: ignore[no-untyped-def]
           scale: ir.Value | None = None, bias: ir.Value | None = None,
           **bound: object) -> bool:
    """Same trailing axes, keepdims, scalar eps, exponent 2, affine params of normalized shape."""
    if x.dtype not in FLOAT_TYPES or const_scalar(eps) is None:
        return False
    if bound.get("c_two") is not None and not is_close(bound["c_two"], 2.0):  # type: ignore[arg-type]
        return False
    nodes = (mean.producer(), var.producer())
    if any(n is None or not keepdims(n) for n in nodes):
        return False
    axes = [reduce_axes(n) for n in nodes]  # type: ignore[arg-type]
    if axes[0] is None or axes[1] is None:
        return False
    rank = rank_of(x)
    first = normalized_suffix(axes[0], rank)
    if first is None or first != normalized_suffix(axes[1], rank):
        return False
    if any(p is not None and not param_ok(p, x, first) for p in (scale, bias)):
        return False
    if scale is None:
        if static_dims(x, first) is None:
            return False
        return not absorbed_later(context.root.outputs[0], "Mul", x, first)
    if bias is None:
        return not absorbed_later(context.root.outputs[0], "Add", x, first)
    return True


def _axis(x: ir.Value, mean: ir.Value) -> int:
    node = mean.producer()
    assert node is not None  # the check ran on the same match
    return normalized_suffix(reduce_axes(node) or [], rank_of(x)) or -1


def _ones(op, x: ir.Value, first: int):  # type: ignore[no-untyped-def]
    dims = static_dims(x, first)
    assert dims is not None and x.dtype is not None  # the check required static dims
    return op.Constant(value=ir.tensor(np.ones(dims, dtype=x.dtype.numpy())))


def _fused(op, x, mean, eps, scale=None, bias=None, **_):  # type: ignore[no-untyped-def]
    first = _axis(x, mean)
    if scale is None:
        scale = _ones(op, x, first)
    inputs = [x, scale] + ([bias] if bias is not None else [])
    return op.LayerNormalization(*inputs, axis=first, epsilon=const_scalar(eps), stash_type=1)


# Largest patterns first: at one root node the first matching rule wins.
_RULES = [
    fusion_rule(target, _fused, _check, f"layer_norm{target.__name__}")
    for target in (_scaled_bias, _bias_scaled, _scaled, _scaled_rev, _divided,
                   _times_reciprocal, _reciprocal_times)
]


@register_pass(
    "fuse_layer_norm",
    "fuse ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div(/Mul/Add) into LayerNormalization-17",
    user=False,
)
def fuse_layer_norm(model: ir.Model) -> bool:
    """(x - E[x]) / sqrt(Var[x] + eps) * scale + bias -> LayerNormalization(x, scale, bias)."""
    if opset(model) < LAYER_NORM_SINCE:
        logger.info("fuse_layer_norm: model opset %d < %d, left decomposed", opset(model),
                    LAYER_NORM_SINCE)
        return False
    ensure_types(model)
    return apply_rules(model, _RULES) > 0
