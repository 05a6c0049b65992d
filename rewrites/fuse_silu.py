"""Pass ``fuse_silu``: ``x * Sigmoid(x)`` (SiLU / swish) -> ``Swish`` (opset 24).

Ops: ``Mul(x, Sigmoid(x))`` (either operand order) -> ``Swish(x, alpha=1)``, and
``Mul(x, Sigmoid(x * a))`` with a constant scalar a -> ``Swish(x, alpha=a)``.

Decision: ONNX has exactly one standard single op for this, ``Swish``, new in opset 24
(onnxruntime 1.32 runs it on CPU).  Below opset 24, which includes everything torch 2.14
exports (its maximum is 23), the pair is left as it is: HardSwish is a different function; a
``pipeline.custom::SiLU`` op would make onnxruntime unable to run the model and break stage-one
parity; a model-local function would force stage two to inline functions for no gain, since
lowering maps Sigmoid+Mul to MIL ``silu`` by itself.  Raising the opset import would
re-version every other op.
"""

from __future__ import annotations

import logging

import onnx_ir as ir

from rewrites._util import (
    FLOAT_TYPES,
    apply_rules,
    const_scalar,
    const_var,
    either,
    ensure_types,
    fusion_rule,
    opset,
)
from rewrites.manager import register_pass

logger = logging.getLogger(__name__)

SWISH_SINCE = 24


def _x_sig(op, x):  # type: ignore[no-untyped-def]
    return op.Mul(x, op.Sigmoid(x))


def _sig_x(op, x):  # type: ignore[no-untyped-def]
    return op.Mul(op.Sigmoid(x), x)


def _x_sig_scaled(op, x):  # type: ignore[no-untyped-def]
    return op.Mul(x, op.Sigmoid(either(op.Mul, x, const_var("alpha"))))


def _sig_scaled_x(op, x):  # type: ignore[no-untyped-def]
    return op.Mul(op.Sigmoid(either(op.Mul, x, const_var("alpha"))), x)


def _check(context, x: ir.Value, alpha: ir.Value | None = None, **_: object) -> bool:  # type: ignore[no-untyped-def]
    """x is floating point; alpha, when present, is a one-element constant."""
    return x.dtype in FLOAT_TYPES and (alpha is None or const_scalar(alpha) is not None)


def _swish(op, x, alpha=None, **_):  # type: ignore[no-untyped-def]
    value = 1.0 if alpha is None else const_scalar(alpha)
    return op.Swish(x, alpha=value)


_RULES = [
    fusion_rule(target, _swish, _check, f"silu{target.__name__}")
    for target in (_x_sig_scaled, _sig_scaled_x, _x_sig, _sig_x)
]


@register_pass(
    "fuse_silu",
    "fuse x*Sigmoid(x) into Swish-24 (opset >= 24; left as is below, see docstring)",
    user=False,
)
def fuse_silu(model: ir.Model) -> bool:
    """x * sigmoid(a*x) -> Swish(x, alpha=a)."""
    if opset(model) < SWISH_SINCE:
        logger.info("fuse_silu: model opset %d < %d, Sigmoid+Mul kept", opset(model), SWISH_SINCE)
        return False
    ensure_types(model)
    return apply_rules(model, _RULES) > 0
