"""Tables of stage two: ONNX op handlers and composites.

Handlers are keyed by ``(domain, op_type)`` with ``since`` = the ONNX opset of that domain from
which the handler applies (the next registered ``since`` ends it).  Register with::

    @onnx_op("HardSigmoid", since=6)
    def hard_sigmoid(ctx: LowerContext, node: Node) -> Outputs: ...

A handler receives the lowering context and the node (MIL inputs, ``None`` for omitted optional
inputs, and schema-defaulted attributes) and returns one MIL value per ONNX output.  It never
names or binds values itself: the driver names every value after the ONNX tensor it computes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.registry import COMPOSITE, NATIVE, Registry

Handler = Callable[..., Any]

HANDLERS: Registry[Handler] = Registry("lowering handler")

DEFAULT_DOMAIN = ""


def onnx_op(
    op_type: str,
    *,
    since: int = 1,
    domain: str = DEFAULT_DOMAIN,
    kind: str = NATIVE,
    user: bool = False,
    override: bool = False,
    **meta: Any,
) -> Callable[[Handler], Handler]:
    """Register a lowering handler for ``domain::op_type`` from opset ``since`` on.

    ``kind`` says what the op becomes in MIL (``native`` ops or a ``composite`` sequence); the
    README's op table and ``--list-ops`` are generated from it.
    """
    if domain in ("ai.onnx",):
        domain = DEFAULT_DOMAIN
    return HANDLERS.register(
        op_type, domain=domain, since=since, kind=kind, user=user, override=override, **meta
    )


def composite_op(op_type: str, *, since: int = 1, domain: str = DEFAULT_DOMAIN, **kw: Any) -> Callable[[Handler], Handler]:
    """Shorthand for a handler whose MIL form is a composite (a sequence of MIL ops)."""
    return onnx_op(op_type, since=since, domain=domain, kind=COMPOSITE, **kw)
