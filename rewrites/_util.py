"""Helpers shared by the rewrite passes: applying pattern rules, constants, opsets, types."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import onnx_ir as ir
import onnx_ir.passes.common as common_passes
from onnxscript.rewriter import pattern

logger = logging.getLogger(__name__)

#: Floating types the fusions accept (the fused ONNX ops are defined on these).
FLOAT_TYPES = frozenset(
    {ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.BFLOAT16, ir.DataType.DOUBLE}
)

# A rule set rarely needs more than two sweeps (a fusion exposing another); the cap only
# guards against a rule pair that undo each other.
_MAX_SWEEPS = 8


def apply_rules(
    model: ir.Model, rules: Sequence[pattern.RewriteRule], *, commute: bool = False
) -> int:
    """Apply ``rules`` until none matches; returns the number of rewrites made.

    ``commute=True`` also tries every operand order of commutative ops (Add, Mul) in patterns.
    """
    rule_set = pattern.RewriteRuleSet(list(rules), commute=commute)
    total = 0
    for _ in range(_MAX_SWEEPS):
        count = rule_set.apply_to_model(model)
        total += count
        if not count:
            break
    return total


def opset(model: ir.Model, domain: str = "") -> int:
    """The model's opset version for ``domain`` (0 when not imported)."""
    return int(model.opset_imports.get(domain, 0))


def ensure_types(model: ir.Model) -> None:
    """Run ONNX shape inference when some node output has no known type (fusion checks need it)."""
    missing = any(
        out.type is None
        for node in ir.traversal.RecursiveGraphIterator(model.graph)
        for out in node.outputs
    )
    if missing:
        common_passes.ShapeInferencePass(strict_mode=False)(model)


def const_array(value: ir.Value | None) -> np.ndarray | None:
    """The value as a numpy array when it is a constant (initializer or Constant), else None."""
    if value is None or value.is_graph_input():
        return None
    tensor = ir.convenience.get_const_tensor(value)
    return None if tensor is None else tensor.numpy()


def const_scalar(value: ir.Value | None) -> float | None:
    """The value as a Python float when it is a constant holding exactly one number."""
    array = const_array(value)
    if array is None or array.size != 1:
        return None
    return float(array.reshape(()))


def is_close(value: ir.Value | None, target: float, rel: float = 1e-4) -> bool:
    """True when ``value`` is a one-element constant within ``rel`` of ``target``.

    Exporters print constants like sqrt(2) or 0.044715 with float32 precision; 1e-4 relative
    accepts those spellings and nothing a different formula would produce.
    """
    got = const_scalar(value)
    return got is not None and math.isclose(got, target, rel_tol=rel, abs_tol=0.0)


def int_list(value: ir.Value | None) -> list[int] | None:
    """A constant 1-D (or scalar) integer tensor as a list of ints, else None."""
    array = const_array(value)
    if array is None or array.dtype.kind not in "iu":
        return None
    return [int(v) for v in array.reshape(-1)]


def reduce_axes(node: ir.Node) -> list[int] | None:
    """Axes of a Reduce* node (attribute before opset 18, input after), None when not static."""
    attr = node.attributes.get("axes")
    if attr is not None:
        return [int(a) for a in attr.as_ints()]
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        return int_list(node.inputs[1])
    return None


def keepdims(node: ir.Node) -> bool:
    """The Reduce* node's keepdims attribute (default 1)."""
    attr = node.attributes.get("keepdims")
    return True if attr is None else bool(attr.as_int())


def normalized_suffix(axes: Sequence[int], rank: int | None) -> int | None:
    """If ``axes`` are exactly the last k axes, the first of them (negative), else None."""
    if not axes:
        return None
    if rank is None:
        if any(a >= 0 for a in axes):
            return None
        neg = sorted(axes)
    else:
        neg = sorted(a - rank if a >= 0 else a for a in axes)
    if neg != list(range(-len(neg), 0)):
        return None
    return neg[0]


def rank_of(value: ir.Value) -> int | None:
    """The rank of a value when its shape is known."""
    return None if value.shape is None else len(value.shape)


def either(op_fn, a, b):  # type: ignore[no-untyped-def]
    """Pattern for a commutative binary op with operands in either order: f(a, b) | f(b, a).

    Cheaper than ``RewriteRuleSet(commute=True)``, which copies the whole pattern 2**k times.
    Limit: onnxscript 0.7.2's matcher does not undo bindings made by a failed alternative, so
    when neither operand is bound yet, f(b, a) only matches if f(a, b) fails before binding.
    """
    return pattern.OrValue([op_fn(a, b), op_fn(b, a)])


def fusion_rule(target, replacement, check, name: str) -> pattern.RewriteRule:  # type: ignore[no-untyped-def]
    """A rule that replaces the pattern's output and leaves inner nodes to dead-code removal.

    ``remove_nodes=False`` lets a pattern match when an inner value is shared with other code
    (the TorchScript exporter's CSE merges ``0.5 * x`` across GELUs, for instance): the fused op
    recomputes it and the shared node stays for its other users.  Pure ONNX ops only.
    """
    return pattern.RewriteRule(target, replacement, check, name=name, remove_nodes=False)


def static_dims(x: ir.Value, first: int) -> tuple[int, ...] | None:
    """x.shape[first:] as ints when all of those dims are known, else None."""
    if x.shape is None:
        return None
    dims = [d for d in x.shape.dims[first:] if isinstance(d, int)]
    return tuple(dims) if len(dims) == len(x.shape.dims[first:]) else None


def param_ok(param: ir.Value, x: ir.Value, first: int) -> bool:
    """A constant whose shape is exactly the normalized shape x.shape[first:]."""
    array = const_array(param)
    dims = static_dims(x, first)
    return array is not None and dims is not None and dims == array.shape


def absorbed_later(out: ir.Value, consumer_op: str, x: ir.Value, first: int) -> bool:
    """True when ``out`` feeds one ``consumer_op`` with a valid scale/bias: a larger rule
    fuses at that consumer, and fusing here first would leave the Mul/Add outside."""
    uses = list(out.uses())
    if len(uses) != 1 or out.is_graph_output():
        return False
    node = uses[0].node
    if node.op_type != consumer_op or node.domain != "" or len(node.inputs) != 2:
        return False
    other = node.inputs[1 - uses[0].idx]
    return other is not None and param_ok(other, x, first)


def const_var(name: str) -> pattern.Var:
    """A pattern variable that only binds a constant (initializer or Constant output).

    The check runs once the whole pattern matched (it rejects a non-constant operand).
    """
    return pattern.Var(name, check=lambda _context, value, **_: const_array(value) is not None)
