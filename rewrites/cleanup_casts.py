"""Pass ``cleanup_casts``: remove casts that cannot change a value.

Ops: ``Cast(x, to=T)`` with x already of type T -> x; ``Cast(Cast(x, to=A), to=B)`` ->
``Cast(x, to=B)`` when every value of x's type is exactly representable in A (widening), since
then the first cast is exact and the pair equals one cast; and ``CastLike(x, like)`` when x and
like share a type.  Narrowing chains (float32 -> float16 -> float32) are kept: they round.
Needs element types, so ONNX shape inference runs first when some are unknown.
"""

from __future__ import annotations

import logging

import onnx_ir as ir
import onnx_ir.passes.common as common_passes
from onnxscript.rewriter import pattern

from rewrites._util import apply_rules, ensure_types
from rewrites.manager import register_pass

logger = logging.getLogger(__name__)

D = ir.DataType
#: source type -> types that hold every value of it exactly.
_EXACT_WIDENINGS: dict[ir.DataType, frozenset[ir.DataType]] = {
    D.BOOL: frozenset({D.INT8, D.UINT8, D.INT16, D.UINT16, D.INT32, D.UINT32, D.INT64,
                       D.UINT64, D.FLOAT16, D.BFLOAT16, D.FLOAT, D.DOUBLE}),
    # int8/uint8 fit float16 exactly: |v| <= 2048 needs at most 11 significand bits.
    D.INT8: frozenset({D.INT16, D.INT32, D.INT64, D.FLOAT16, D.FLOAT, D.DOUBLE}),
    D.UINT8: frozenset({D.INT16, D.UINT16, D.INT32, D.UINT32, D.INT64, D.UINT64, D.FLOAT16,
                        D.BFLOAT16, D.FLOAT, D.DOUBLE}),
    D.INT16: frozenset({D.INT32, D.INT64, D.FLOAT, D.DOUBLE}),
    D.UINT16: frozenset({D.INT32, D.UINT32, D.INT64, D.UINT64, D.FLOAT, D.DOUBLE}),
    D.INT32: frozenset({D.INT64, D.DOUBLE}),
    D.UINT32: frozenset({D.INT64, D.UINT64, D.DOUBLE}),
    D.FLOAT16: frozenset({D.FLOAT, D.DOUBLE}),
    D.BFLOAT16: frozenset({D.FLOAT, D.DOUBLE}),
    D.FLOAT: frozenset({D.DOUBLE}),
}


def is_exact_widening(src: ir.DataType | None, dst: ir.DataType | None) -> bool:
    """True when casting src -> dst never changes a value (src == dst included)."""
    if src is None or dst is None:
        return False
    return src == dst or dst in _EXACT_WIDENINGS.get(src, frozenset())


def _same_type_target(op, x):  # type: ignore[no-untyped-def]
    return op.Cast(x, _allow_other_attributes=True, _outputs=["y"])


def _same_type_check(context, x: ir.Value, y: ir.Value, **_: object) -> bool:  # type: ignore[no-untyped-def]
    node = y.producer()
    to = node.attributes.get("to") if node is not None else None
    return x.dtype is not None and to is not None and x.dtype == D(to.as_int())


def _identity(op, x, **_):  # type: ignore[no-untyped-def]
    return op.Identity(x)


def _chain_target(op, x):  # type: ignore[no-untyped-def]
    mid = op.Cast(x, _allow_other_attributes=True, _outputs=["mid"])
    return op.Cast(mid, _allow_other_attributes=True, _outputs=["y"])


def _chain_check(context, x: ir.Value, mid: ir.Value, **_: object) -> bool:  # type: ignore[no-untyped-def]
    return is_exact_widening(x.dtype, mid.dtype)


def _chain_replacement(op, x, y, **_):  # type: ignore[no-untyped-def]
    node = y.producer()
    return op.Cast(x, **{k: v.value for k, v in node.attributes.items()})


def _cast_like_target(op, x, like):  # type: ignore[no-untyped-def]
    return op.CastLike(x, like, _allow_other_attributes=True)


def _cast_like_check(context, x: ir.Value, like: ir.Value, **_: object) -> bool:  # type: ignore[no-untyped-def]
    return x.dtype is not None and x.dtype == like.dtype


_RULES = [
    pattern.RewriteRule(_chain_target, _chain_replacement, _chain_check, name="cast_chain"),
    pattern.RewriteRule(_same_type_target, _identity, _same_type_check, name="cast_same_type"),
    pattern.RewriteRule(_cast_like_target, _identity, _cast_like_check, name="castlike_same"),
]


@register_pass(
    "cleanup_casts",
    "remove Cast to the same type; collapse Cast chains whose first step is exact",
    user=False,
)
def cleanup_casts(model: ir.Model) -> bool:
    """Cast(x: T, to=T) -> x;  Cast(Cast(x, to=A), to=B) -> Cast(x, to=B) if x -> A is exact."""
    ensure_types(model)
    changed = apply_rules(model, _RULES) > 0
    if changed:
        common_passes.IdentityEliminationPass()(model)
        common_passes.RemoveUnusedNodesPass()(model)
    return changed
