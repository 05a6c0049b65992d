"""Elementwise composites: fallbacks for Max and Min built from sub/relu/add.

Ops: Max, Min (both ``since=6``, the opset where their broadcasting schema starts being read by
the native handlers too).

MIL has ``maximum`` and ``minimum``, and the native handlers in ``ops/elementwise.py`` use them:
one op each, exact, and on the Neural Engine.  These composites are *fallbacks*, chosen only with
the ``composites`` lowering option (``--composites Max``): for a backend or device where the
binary op is unavailable, or to show the composite road end to end.  They are exact in float
arithmetic except where ``a - b`` overflows (|a - b| above the dtype's max) or rounds: for
floats, ``b + (a - b)`` can differ from ``a`` by one rounding of the subtraction.
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.composites import builtin_composite

log = logging.getLogger(__name__)


def _fold(ctx: Any, node: Any, inputs: list[Any], step: Any) -> Any:
    values = [v for v in inputs if v is not None]
    if not values:
        raise UnsupportedOpError(f"lower: {node.describe()}: needs at least one input; fix the model")
    if not all(ctx.is_float(v) for v in values):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: the sub/relu composite needs float inputs (MIL relu is "
            "float only); drop the op from --composites to use the native handler"
        )
    result = values[0]
    for other in values[1:]:
        result = step(ctx, result, other)
    return result


def _max2(ctx: Any, a: Any, b: Any) -> Any:
    return ctx.mb.add(x=b, y=ctx.mb.relu(x=ctx.mb.sub(x=a, y=b)))


def _min2(ctx: Any, a: Any, b: Any) -> Any:
    return ctx.mb.sub(x=a, y=ctx.mb.relu(x=ctx.mb.sub(x=a, y=b)))


@builtin_composite("Max", since=6)
def max_sub_relu_add(ctx: Any, node: Any, attrs: dict[str, Any], inputs: list[Any]) -> Any:
    """max(a, b) = b + relu(a - b), folded left over the inputs (broadcasting as ONNX does).

    MIL: sub, relu, add per pair: three ops the Neural Engine runs, vs one native ``maximum``.
    Limits: float inputs only (MIL relu); a fallback (the native handler is the default); NaN propagation follows relu
    (relu(NaN) = NaN, so a NaN in either input gives NaN, as ONNX Max does).
    """
    return _fold(ctx, node, inputs, _max2)


@builtin_composite("Min", since=6)
def min_sub_relu_sub(ctx: Any, node: Any, attrs: dict[str, Any], inputs: list[Any]) -> Any:
    """min(a, b) = a - relu(a - b), folded left over the inputs.

    MIL: sub, relu, sub per pair (fallback to one native ``minimum``).
    Limits: float inputs only; a fallback, as for Max.
    """
    return _fold(ctx, node, inputs, _min2)
