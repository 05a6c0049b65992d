"""Composites of our own ONNX domain ``pipeline.custom`` (version 1; semantics in symbolics/DOMAIN.md).

Ops: HardTanh.

Our custom-domain ops exist precisely because they have no single ONNX op, so each lowers as a
composite: the MIL sequence that computes the documented semantics, chosen for the Neural Engine.
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.composites import builtin_composite

CUSTOM_DOMAIN = "pipeline.custom"


@builtin_composite("HardTanh", domain=CUSTOM_DOMAIN, since=1)
def hard_tanh(ctx: Any, node: Any, attrs: dict[str, Any], inputs: list[Any]) -> Any:
    """Y = min(max(X, min_val), max_val), bounds rounded to X's type.

    MIL: relu6 for (0, 6) (what Apple's frontend emits for ReLU6, an ANE-native activation), else
    clip (one op that keeps NaN as NaN, which a maximum/minimum pair would also do but in two).
    Limits: none (min_val > max_val gives max_val everywhere, as ONNX Clip and torch do).
    """
    x = inputs[0]
    if attrs.get("min_val") is None or attrs.get("max_val") is None:
        raise UnsupportedOpError(f"lower: {node.describe()}: min_val and max_val are required; fix the model")
    lo, hi = float(attrs["min_val"]), float(attrs["max_val"])
    if (lo, hi) == (0.0, 6.0):
        return ctx.mb.relu6(x=x)
    return ctx.mb.clip(x=x, alpha=ctx.scalar_like(x, lo), beta=ctx.scalar_like(x, hi))
