"""Activation composites for ONNX ops MIL has no op for.

Ops: Swish (opset 24), SwiGLU (opset 28).

Spec read: Swish 24 (``x * sigmoid(alpha * x)``, alpha default 1); SwiGLU 28
(``Swish_alpha(A) * B``, A and B of identical shape, no broadcasting).
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.lowering.composites import builtin_composite

log = logging.getLogger(__name__)


def _swish(ctx: Any, x: Any, alpha: float) -> Any:
    """x * sigmoid(alpha * x): MIL ``silu`` for alpha = 1 (one op, Neural Engine), else 3 ops."""
    if alpha == 1.0:
        return ctx.mb.silu(x=x)
    scaled = ctx.mb.mul(x=x, y=ctx.scalar_like(x, alpha))
    return ctx.mb.mul(x=x, y=ctx.mb.sigmoid(x=scaled))


@builtin_composite("Swish", since=24)
def swish(ctx: Any, node: Any, attrs: dict[str, Any], inputs: list[Any]) -> Any:
    """y = x * sigmoid(alpha * x).

    MIL: silu when alpha == 1 (native, what Apple's frontend emits for SiLU); otherwise
    mul(x, sigmoid(mul(x, alpha))): sigmoid and mul both run on the Neural Engine, and scaling
    x before the sigmoid keeps the composite exact to fp rounding of alpha * x.
    Limits: none.
    """
    return _swish(ctx, inputs[0], float(attrs.get("alpha", 1.0)))


@builtin_composite("SwiGLU", since=28)
def swiglu(ctx: Any, node: Any, attrs: dict[str, Any], inputs: list[Any]) -> Any:
    """y = Swish_alpha(A) * B.

    MIL: silu (or the Swish composite for alpha != 1), then mul: two or four ops, all on the
    Neural Engine.
    Limits: none.
    """
    a, b = inputs[0], inputs[1]
    return ctx.mb.mul(x=_swish(ctx, a, float(attrs.get("alpha", 1.0))), y=b)
