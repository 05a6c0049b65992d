"""The composites registry: MIL op sequences for ONNX ops (and our custom-domain ops) MIL lacks.

A composite is ``fn(ctx, node, attrs, inputs) -> MIL value(s)``: the lowering context, the node,
its schema-defaulted attributes and its MIL inputs (``None`` for omitted optionals); it returns
one MIL value per ONNX output.  Register one with::

    @register_composite("Swish", since=24)
    def swish(ctx, node, attrs, inputs): ...

The driver (``pipeline/lowering/graph.py``) picks, for each node, in this order:

1. a custom layer, when the op is named in ``custom_layers`` (neural-network backend only);
2. a *user* composite (``user=True``, the default of :func:`register_composite`);
3. a user handler (``@onnx_op(..., user=True)``);
4. a built-in composite, when the op is named in the ``composites`` lowering option
   (``--composites Max``): the built-in fallbacks, e.g. ``max(a, b) = b + relu(a - b)``;
5. the built-in handler;
6. a built-in composite (ops no handler covers);
7. a custom layer, with ``custom_layers="all-unsupported"``.

Built-in families (explicit list below): ``elementwise`` (Max, Min fallbacks), ``activation``
(Swish, SwiGLU), ``custom_domain`` (our pipeline.custom ops).  Users add their own in a Python file passed with ``--extensions FILE``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pipeline.registry import COMPOSITE, Entry, Registry

log = logging.getLogger(__name__)

#: ``fn(ctx, node, attrs, inputs) -> MIL value or tuple of MIL values``.
Composite = Callable[..., Any]

COMPOSITES: Registry[Composite] = Registry("composite")


def _domain(domain: str) -> str:
    return "" if domain == "ai.onnx" else domain


def register_composite(
    op_type: str,
    *,
    domain: str = "",
    since: int = 1,
    user: bool = True,
    override: bool = False,
) -> Callable[[Composite], Composite]:
    """Register ``fn(ctx, node, attrs, inputs)`` as the composite of ``domain::op_type``.

    Args:
        op_type: the ONNX op type, e.g. ``"SigmoidTanh"``.
        domain: its ONNX domain ("" or "ai.onnx" for the default one).
        since: the domain's opset from which the composite applies.
        user: True (the default) for user composites, which win over every built-in lowering;
            the project's own composites pass False.
        override: replace an entry with the same key, ``since`` and ``user``.

    Returns:
        A decorator that registers the function and returns it unchanged.
    """
    return COMPOSITES.register(
        op_type, domain=_domain(domain), since=since, kind=COMPOSITE, user=user, override=override
    )


def builtin_composite(op_type: str, *, domain: str = "", since: int = 1) -> Callable[[Composite], Composite]:
    """Register one of the project's own composites (``user=False``)."""
    return register_composite(op_type, domain=domain, since=since, user=False)


def lookup(op_type: str, *, domain: str, opset: int, user: bool | None = None) -> Entry[Composite] | None:
    """The composite for ``domain::op_type`` at ``opset`` (only user / built-in ones if asked)."""
    versions = [
        e for e in COMPOSITES.versions(op_type, domain=_domain(domain))
        if e.since <= opset and (user is None or e.user == user)
    ]
    return versions[-1] if versions else None


def as_handler(composite: Composite) -> Callable[..., Any]:
    """Adapt a composite to the handler signature ``(ctx, node)`` the driver calls."""

    def handler(ctx: Any, node: Any) -> Any:
        return composite(ctx, node, node.attrs, list(node.inputs))

    handler.__name__ = getattr(composite, "__name__", "composite")
    handler.__doc__ = composite.__doc__
    handler.__wrapped__ = composite  # type: ignore[attr-defined]
    return handler


# Built-in families register at import (explicit list, no scanning).
from pipeline.lowering.composites import activation, custom_domain, elementwise  # noqa: F401

__all__ = ["COMPOSITES", "Composite", "as_handler", "builtin_composite", "lookup", "register_composite"]
