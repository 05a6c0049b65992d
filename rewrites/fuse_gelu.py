"""Pass ``fuse_gelu``: written-out GELU (erf form and tanh approximation) -> one ``Gelu``.

Ops: ``0.5 * x * (1 + Erf(x / sqrt(2)))`` (also ``x * 0.7071``, any association of the three
factors, operands in either order) -> ``Gelu(x)``; ``0.5 * x * (1 + Tanh(sqrt(2/pi) *
(x + 0.044715 * x**3)))`` (``Pow(x, 3)`` or ``x*x*x``) -> ``Gelu(x, approximate="tanh")``.

Opset decision: ``Gelu`` exists from opset 20 (onnxruntime runs it on CPU; stage two lowers it
to MIL ``gelu`` EXACT / TANH_APPROXIMATION).  Models imported at opset < 20 are left as they
are: raising the opset import would silently re-version every other op in the graph, and a
custom-domain op would break onnxruntime parity.  Export at opset >= 20 to get the fusion.
"""

from __future__ import annotations

import logging
import math

import onnx_ir as ir
from onnxscript.rewriter import pattern

from rewrites._util import (
    FLOAT_TYPES,
    apply_rules,
    const_var,
    either,
    ensure_types,
    fusion_rule,
    is_close,
    opset,
)
from rewrites.manager import register_pass

logger = logging.getLogger(__name__)

GELU_SINCE = 20
_SQRT2 = math.sqrt(2.0)
_TANH_K = math.sqrt(2.0 / math.pi)
_TANH_A = 0.044715


def _erf_one_plus(op, x):  # type: ignore[no-untyped-def]
    """1 + Erf(x / sqrt2) or 1 + Erf(x * (1/sqrt2))."""
    scaled = pattern.OrValue([op.Div(x, const_var("c_div")), either(op.Mul, x, const_var("c_mul"))])
    return either(op.Add, op.Erf(scaled), const_var("c_one"))


def _tanh_one_plus(op, x):  # type: ignore[no-untyped-def]
    """1 + Tanh(k * (x + a * x**3))."""
    cube = pattern.OrValue(
        [op.Pow(x, const_var("c_three")), either(op.Mul, op.Mul(x, x), x)]
    )
    a = const_var("c_a")
    # a * x**3 written as a product of four factors associates many ways; these are the two
    # exporters produce from `a * x**3` / `x**3 * a` and from `a * x * x * x`.
    a_cube = pattern.OrValue(
        [either(op.Mul, cube, a), either(op.Mul, either(op.Mul, either(op.Mul, x, a), x), x)]
    )
    inner = either(op.Add, x, a_cube)
    return either(op.Add, op.Tanh(either(op.Mul, inner, const_var("c_k"))), const_var("c_one"))


def _targets(one_plus):  # type: ignore[no-untyped-def]
    """The ways exporters associate 0.5 * x * (1 + f), root operands in both orders (a rule's
    root cannot be an Or, so each order is one rule)."""

    def half_x_times_f(op, x):  # type: ignore[no-untyped-def]
        return op.Mul(either(op.Mul, x, const_var("c_half")), one_plus(op, x))

    def f_times_half_x(op, x):  # type: ignore[no-untyped-def]
        return op.Mul(one_plus(op, x), either(op.Mul, x, const_var("c_half")))

    def x_times_half_f(op, x):  # type: ignore[no-untyped-def]
        return op.Mul(x, either(op.Mul, one_plus(op, x), const_var("c_half")))

    def half_f_times_x(op, x):  # type: ignore[no-untyped-def]
        return op.Mul(either(op.Mul, one_plus(op, x), const_var("c_half")), x)

    def x_f_times_half(op, x):  # type: ignore[no-untyped-def]
        return op.Mul(either(op.Mul, x, one_plus(op, x)), const_var("c_half"))

    def half_times_x_f(op, x):  # type: ignore[no-untyped-def]
        return op.Mul(const_var("c_half"), either(op.Mul, x, one_plus(op, x)))

    def x_f_over_two(op, x):  # type: ignore[no-untyped-def]
        return op.Div(either(op.Mul, x, one_plus(op, x)), const_var("c_two"))

    return [half_x_times_f, f_times_half_x, x_times_half_f, half_f_times_x, x_f_times_half,
            half_times_x_f, x_f_over_two]


def _common_ok(x: ir.Value, bound: dict[str, object]) -> bool:
    if x.dtype not in FLOAT_TYPES or not is_close(bound.get("c_one"), 1.0):  # type: ignore[arg-type]
        return False
    if bound.get("c_two") is not None:
        return is_close(bound["c_two"], 2.0)  # type: ignore[arg-type]
    return is_close(bound.get("c_half"), 0.5)  # type: ignore[arg-type]


def _erf_check(context, x: ir.Value, **bound: object) -> bool:  # type: ignore[no-untyped-def]
    """Constants are 0.5, 1 and sqrt(2) (or its inverse); x is floating point."""
    if not _common_ok(x, bound):
        return False
    if bound.get("c_div") is not None:
        return is_close(bound["c_div"], _SQRT2)  # type: ignore[arg-type]
    return is_close(bound.get("c_mul"), 1.0 / _SQRT2)  # type: ignore[arg-type]


def _tanh_check(context, x: ir.Value, **bound: object) -> bool:  # type: ignore[no-untyped-def]
    """Constants are 0.5, 1, sqrt(2/pi), 0.044715 (and 3 for Pow); x is floating point."""
    if not _common_ok(x, bound):
        return False
    if bound.get("c_three") is not None and not is_close(bound["c_three"], 3.0):  # type: ignore[arg-type]
        return False
    return is_close(bound.get("c_k"), _TANH_K) and is_close(bound.get("c_a"), _TANH_A)  # type: ignore[arg-type]


def _gelu_erf(op, x, **_):  # type: ignore[no-untyped-def]
    return op.Gelu(x, approximate="none")


def _gelu_tanh(op, x, **_):  # type: ignore[no-untyped-def]
    return op.Gelu(x, approximate="tanh")


_RULES = [
    fusion_rule(t, _gelu_erf, _erf_check, f"gelu_erf_{t.__name__}")
    for t in _targets(_erf_one_plus)
] + [
    fusion_rule(t, _gelu_tanh, _tanh_check, f"gelu_tanh_{t.__name__}")
    for t in _targets(_tanh_one_plus)
]


@register_pass(
    "fuse_gelu",
    "fuse written-out GELU (erf and tanh forms) into Gelu-20 (opset >= 20 only)",
    user=False,
)
def fuse_gelu(model: ir.Model) -> bool:
    """0.5*x*(1+erf(x/sqrt2)) -> Gelu(x);  0.5*x*(1+tanh(k(x+a x^3))) -> Gelu(x, 'tanh')."""
    if opset(model) < GELU_SINCE:
        logger.info("fuse_gelu: model opset %d < %d, Gelu left decomposed", opset(model), GELU_SINCE)
        return False
    ensure_types(model)
    return apply_rules(model, _RULES) > 0
