"""Pass ``fuse_rms_norm``: written-out RMS normalization -> ``RMSNormalization`` (opset 23).

Ops: ``x * Reciprocal(Sqrt(ReduceMean(x**2, axes) + eps))`` (or ``x / Sqrt(..)``; ``x*x`` for
``x**2``), optionally ``* scale`` -> ``RMSNormalization(x, scale, axis, epsilon)``.  This is
how a hand-written RMSNorm (``x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w``)
exports.

Opset decision: RMSNormalization exists from opset 23 only, and onnxruntime 1.32 runs it on
CPU (checked).  Below 23 the pattern is left as it is: raising the opset import would re-version
every other op, and ORT's ``SimplifiedLayerNormalization`` is a contrib op the rest of the
pipeline does not know.  Export at opset 23 to get the fusion.  Limits as ``fuse_layer_norm``:
same trailing axes, keepdims=1, scalar constant eps, scale of exactly the normalized shape (a
ones scale is added when absent and the normalized dims are static).
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

RMS_NORM_SINCE = 23


def _rms(op, x):  # type: ignore[no-untyped-def]
    """sqrt(mean(x**2) + eps)."""
    square = pattern.OrValue([op.Pow(x, const_var("c_two")), op.Mul(x, x)])
    mean = op.ReduceMean(square, _allow_other_inputs=True, _allow_other_attributes=True,
                         _outputs=["mean"])
    return op.Sqrt(either(op.Add, mean, const_var("eps")))


def _normalized(op, x):  # type: ignore[no-untyped-def]
    rms = _rms(op, x)
    return pattern.OrValue([op.Div(x, rms), either(op.Mul, x, op.Reciprocal(rms))])


def _divided(op, x):  # type: ignore[no-untyped-def]
    return op.Div(x, _rms(op, x))


def _times_reciprocal(op, x):  # type: ignore[no-untyped-def]
    return op.Mul(x, op.Reciprocal(_rms(op, x)))


def _reciprocal_times(op, x):  # type: ignore[no-untyped-def]
    return op.Mul(op.Reciprocal(_rms(op, x)), x)


def _scaled(op, x, scale):  # type: ignore[no-untyped-def]
    return op.Mul(_normalized(op, x), scale)


def _scaled_rev(op, x, scale):  # type: ignore[no-untyped-def]
    return op.Mul(scale, _normalized(op, x))


def _check(context, x: ir.Value, mean: ir.Value, eps: ir.Value,  # type: ignore[no-untyped-def]
           scale: ir.Value | None = None, **bound: object) -> bool:
    """Trailing axes with keepdims, scalar eps, exponent 2, scale of the normalized shape."""
    if x.dtype not in FLOAT_TYPES or const_scalar(eps) is None:
        return False
    if bound.get("c_two") is not None and not is_close(bound["c_two"], 2.0):  # type: ignore[arg-type]
        return False
    node = mean.producer()
    if node is None or not keepdims(node):
        return False
    axes = reduce_axes(node)
    first = None if axes is None else normalized_suffix(axes, rank_of(x))
    if first is None:
        return False
    if scale is not None:
        return param_ok(scale, x, first)
    if static_dims(x, first) is None:
        return False
    # A Mul by a valid scale right after is fused by the scaled rule at that Mul.
    return not absorbed_later(context.root.outputs[0], "Mul", x, first)


def _fused(op, x, mean, eps, scale=None, **_):  # type: ignore[no-untyped-def]
    node = mean.producer()
    first = normalized_suffix(reduce_axes(node) or [], rank_of(x)) or -1
    if scale is None:
        dims = static_dims(x, first)
        assert dims is not None and x.dtype is not None  # the check required static dims
        scale = op.Constant(value=ir.tensor(np.ones(dims, dtype=x.dtype.numpy())))
    return op.RMSNormalization(x, scale, axis=first, epsilon=const_scalar(eps), stash_type=1)


# Scaled patterns first: at one root node the first matching rule wins.
_RULES = [
    fusion_rule(target, _fused, _check, f"rms_norm{target.__name__}")
    for target in (_scaled, _scaled_rev, _divided, _times_reciprocal, _reciprocal_times)
]


@register_pass(
    "fuse_rms_norm",
    "fuse Pow/ReduceMean/Add/Sqrt/Reciprocal/Mul(/Mul) into RMSNormalization-23 (opset >= 23)",
    user=False,
)
def fuse_rms_norm(model: ir.Model) -> bool:
    """x / sqrt(mean(x^2) + eps) * scale -> RMSNormalization(x, scale)."""
    if opset(model) < RMS_NORM_SINCE:
        logger.info("fuse_rms_norm: model opset %d < %d, left decomposed", opset(model),
                    RMS_NORM_SINCE)
        return False
    ensure_types(model)
    return apply_rules(model, _RULES) > 0
