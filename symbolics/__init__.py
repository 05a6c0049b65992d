"""Custom symbolics for both PyTorch ONNX exporters, read from one registry.

A *symbolic* covers one torch op (``"aten::linalg_inv"``, ``"torchvision::roi_pool"``) and holds
both forms of its translation:

* ``dynamo``: a Python function written with onnxscript ops (``op.Add(...)``) that the dynamo
  exporter traces; it receives the torch op's arguments in schema order (tensors as ONNX values,
  the rest as Python values) and goes in ``custom_translation_table``;
* ``legacy``: a TorchScript-exporter symbolic ``fn(g, *args)`` given to
  ``torch.onnx.register_custom_op_symbolic``.

Entries emit standard ONNX ops where those express the torch semantics exactly, or a node of our
own domain :data:`CUSTOM_DOMAIN` (version :data:`CUSTOM_DOMAIN_VERSION`, see ``DOMAIN.md``) that
stage two lowers.  ``default=False`` entries are opt-in: a caller names them in ``include``.

Users add their own with :func:`symbolic` (see the README, "Custom symbolics"); a user entry wins over a
built-in one with the same torch op.  Family modules: ``vision``, ``sampling``, ``linalg``,
``search``, ``reduction``, ``activation``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import onnx

from pipeline.errors import ExportError
from pipeline.registry import Registry

logger = logging.getLogger(__name__)

CUSTOM_DOMAIN: str = "pipeline.custom"
CUSTOM_DOMAIN_VERSION: int = 1

@dataclasses.dataclass(frozen=True)
class Symbolic:
    """Both exporter forms of one torch op's translation.

    Attributes:
        name: the torch op, ``"namespace::op"`` (the legacy exporter's name).
        opset: lowest ONNX opset (default domain) the emitted nodes need.
        dynamo: onnxscript translation for ``custom_translation_table`` (None: none needed).
        legacy: TorchScript symbolic ``fn(g, *args)`` (None: none needed).
        targets: op overloads the dynamo form covers, ``"namespace::op.overload"``.
        default: whether callers get it without naming it in ``include``.
        emits: op types (``"domain::Op"`` for non-default domains) the entry creates, which
            :func:`used_in` looks for.
        helpers: extra ``(overload, dynamo function)`` pairs for ops torch.export emits next to
            the main one (e.g. the error check after ``linalg_inv_ex``).
    """

    name: str
    opset: int
    dynamo: Callable[..., Any] | None
    legacy: Callable[..., Any] | None
    targets: tuple[str, ...]
    default: bool = True
    emits: tuple[str, ...] = ()
    helpers: tuple[tuple[str, Callable[..., Any]], ...] = ()


SYMBOLICS: Registry[Symbolic] = Registry("symbolic")


def add_symbolic(
    name: str,
    *,
    opset: int,
    dynamo: Callable[..., Any] | None = None,
    legacy: Callable[..., Any] | None = None,
    targets: Iterable[str] | None = None,
    default: bool = True,
    emits: Iterable[str] = (),
    helpers: Mapping[str, Callable[..., Any]] | None = None,
    user: bool = True,
    override: bool = False,
) -> Symbolic:
    """Register a symbolic for torch op ``name`` (``"namespace::op"``) valid from ``opset`` on.

    Args:
        name: torch op name as the TorchScript exporter spells it, e.g. ``"aten::hardtanh"``.
        opset: lowest ONNX opset of the standard ops the translation emits.
        dynamo: onnxscript translation for the dynamo exporter.
        legacy: TorchScript symbolic ``fn(g, *args)``.
        targets: dynamo op overloads covered (default: ``name + ".default"``).
        default: False makes the entry opt-in (callers name it in ``include``).
        emits: op types the translation creates, for :func:`used_in`.
        helpers: extra dynamo translations ``{"ns::op.overload": fn}`` the op needs.
        user: True for user entries, which win over built-in ones of the same name.
        override: replace an entry with the same name, opset and ``user``.

    Returns:
        The registered :class:`Symbolic`.

    Raises:
        ExportError: ``name`` is not ``namespace::op`` or neither form is given.
    """
    if "::" not in name or name.startswith("::"):
        raise ExportError(
            f"symbolics: torch op name {name!r} is not 'namespace::op'; "
            "spell it like 'aten::hardtanh' or 'mylib::my_op'"
        )
    if dynamo is None and legacy is None:
        raise ExportError(f"symbolics: {name} has neither a dynamo nor a legacy form; give one")
    entry = Symbolic(
        name=name,
        opset=opset,
        dynamo=dynamo,
        legacy=legacy,
        targets=tuple(targets) if targets is not None else (f"{name}.default",),
        default=default,
        emits=tuple(emits),
        helpers=tuple((helpers or {}).items()),
    )
    SYMBOLICS.add(name, entry, since=opset, user=user, override=override)
    return entry


def symbolic(
    name: str,
    *,
    opset: int = 18,
    legacy: Callable[..., Any] | None = None,
    targets: Iterable[str] | None = None,
    default: bool = True,
    emits: Iterable[str] = (),
    helpers: Mapping[str, Callable[..., Any]] | None = None,
    user: bool = True,
    override: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register the decorated onnxscript function as the dynamo form of ``name``.

    The legacy (TorchScript) form, if any, is passed as ``legacy=``; see :func:`add_symbolic`
    for the other arguments.  Returns the function unchanged.
    """

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        add_symbolic(
            name, opset=opset, dynamo=fn, legacy=legacy, targets=targets, default=default,
            emits=emits, helpers=helpers, user=user, override=override,
        )
        return fn

    return deco


def _selected(opset: int, include: Iterable[str] | None) -> list[Symbolic]:
    """The entries valid at ``opset``: every default one plus the opt-in ones in ``include``."""
    wanted = set(include or ())
    unknown = sorted(wanted - set(SYMBOLICS.names()))
    if unknown:
        raise ExportError(
            f"symbolics: unknown symbolic(s) {', '.join(unknown)} in include; "
            f"known: {', '.join(sorted(SYMBOLICS.names()))}"
        )
    chosen: list[Symbolic] = []
    for name in SYMBOLICS.names():
        entry = SYMBOLICS.lookup(name, version=opset)
        if entry is None:
            if name in wanted:
                raise ExportError(
                    f"symbolics: {name} needs ONNX opset >= "
                    f"{min(e.since for e in SYMBOLICS.versions(name))}, export asks for {opset}; "
                    "raise the opset or drop it from include"
                )
            continue
        if entry.value.default or name in wanted:
            chosen.append(entry.value)
    return chosen


def _overload(target: str) -> Any | None:
    """``"ns::op.overload"`` -> ``torch.ops.ns.op.overload`` (None if not loaded)."""
    import torch

    namespace, rest = target.split("::", 1)
    op_name, _, overload = rest.partition(".")
    if namespace == "torchvision":
        try:
            import torchvision  # noqa: F401  (loads torch.ops.torchvision)
        except ImportError:
            return None
    try:
        packet = getattr(getattr(torch.ops, namespace), op_name)
        return getattr(packet, overload or "default")
    except (AttributeError, RuntimeError):
        return None


def translation_table(opset: int, *, include: Iterable[str] | None = None) -> dict[Any, Any]:
    """Map torch op overloads to onnxscript functions for ``custom_translation_table``.

    Args:
        opset: the ONNX opset the model is exported at.
        include: names of opt-in entries to add (default entries are always in).

    Returns:
        ``{torch.ops.ns.op.overload: function}`` for every selected entry with a dynamo form.
    """
    table: dict[Any, Any] = {}
    for entry in _selected(opset, include):
        if entry.dynamo is None:
            continue
        pairs = [(t, entry.dynamo) for t in entry.targets] + list(entry.helpers)
        for target, function in pairs:
            overload = _overload(target)
            if overload is None:
                logger.debug("symbolic %s: %s is not loaded, skipped", entry.name, target)
                continue
            table[overload] = function
    return table


_LEGACY_DONE: dict[tuple[str, int], Callable[..., Any]] = {}


def register_legacy(opset: int, *, include: Iterable[str] | None = None) -> list[str]:
    """Register the selected entries' legacy forms with ``register_custom_op_symbolic``.

    Idempotent: registering the same function for the same name and opset again is a no-op.

    Returns:
        Names of the entries whose legacy form is registered.
    """
    import torch

    names: list[str] = []
    for entry in _selected(opset, include):
        if entry.legacy is None:
            continue
        key = (entry.name, entry.opset)
        if _LEGACY_DONE.get(key) is not entry.legacy:
            torch.onnx.register_custom_op_symbolic(entry.name, entry.legacy, entry.opset)
            _LEGACY_DONE[key] = entry.legacy
        names.append(entry.name)
    return names


def unregister_legacy(names: Iterable[str] | None = None) -> None:
    """Undo :func:`register_legacy` for ``names`` (default: every name it registered)."""
    import torch

    for name, since in list(_LEGACY_DONE):
        if names is None or name in set(names):
            torch.onnx.unregister_custom_op_symbolic(name, since)
            del _LEGACY_DONE[(name, since)]


def used_in(model: onnx.ModelProto) -> list[str]:
    """Best-effort names of the symbolics that left a mark in ``model``.

    Dynamo exports record on each node the torch op it came from; TorchScript exports leave no
    such trace, so only custom-domain nodes name their symbolic (every entry emitting that op).
    """
    found: set[str] = set()
    by_name = {e.value.name: e.value for e in SYMBOLICS}
    emitters: dict[str, set[str]] = {}
    for entry in by_name.values():
        for op_type in entry.emits:
            emitters.setdefault(op_type, set()).add(entry.name)
    targets = {t.split(".")[0].replace("::", "."): e.name
               for e in by_name.values() for t in e.targets}
    nodes = list(model.graph.node) + [n for f in model.functions for n in f.node]
    for node in nodes:
        # dynamo records the fx node (with its torch op target) on every node it emits.
        fx_node = next((p.value for p in node.metadata_props
                        if p.key == "pkg.torch.onnx.fx_node"), "")
        hits = {name for target, name in targets.items() if f"torch.ops.{target}." in fx_node}
        found |= hits
        if not hits and node.domain:
            found |= emitters.get(f"{node.domain}::{node.op_type}", set())
    return sorted(n for n in found if n in by_name)


def names(*, default_only: bool = False) -> list[str]:
    """Every registered torch op name (only default entries if ``default_only``)."""
    out = []
    for name in SYMBOLICS.names():
        entry = SYMBOLICS.lookup(name)
        if entry is not None and (entry.value.default or not default_only):
            out.append(name)
    return out


# Family modules register their built-in entries at import (explicit list, no scanning).
from symbolics import (
    activation,
    domain,
    linalg,
    reduction,
    sampling,
    search,
    vision,
)
from symbolics.domain import attach_functions

__all__ = [
    "CUSTOM_DOMAIN",
    "CUSTOM_DOMAIN_VERSION",
    "SYMBOLICS",
    "Symbolic",
    "activation",
    "add_symbolic",
    "attach_functions",
    "domain",
    "linalg",
    "names",
    "reduction",
    "register_legacy",
    "sampling",
    "search",
    "symbolic",
    "translation_table",
    "unregister_legacy",
    "used_in",
    "vision",
]
