"""A per-process cache of the dynamo exporter's torchlib registry.

``torch.onnx.export(dynamo=True)`` rebuilds ``ONNXRegistry.from_torchlib(opset)`` on every call
(0.7-2 s: onnxscript's ``get_torchlib_ops`` re-parses the source of ~500 traced functions just
to read their domain, then each entry's ONNX signature is inferred again).  Nothing in it depends
on the model, so :func:`cached_registry` installs, for the duration of one export, a
``from_torchlib`` that builds the registry once per opset and hands every call a fresh
:class:`ONNXRegistry` whose per-target lists are copies: ``custom_translation_table`` entries
(``register_op`` inserts into those lists) stay with their own call.

The aten-to-aten decomposition table torch derives from the registry's targets (~0.13 s a call) is
memoized the same way, keyed by that set of targets and the size of torch's own decomposition
table (a decomposition registered later invalidates it); each call gets its own copy.

The first build also skips the re-parse: a traced function's domain is its opset's domain (what
onnxscript's converter reads), a scripted function's is on its already-built IR.

If torch's or onnxscript's internals are not where this module expects them (another version),
the stock path runs unchanged (logged at debug level).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from pipeline.exporting import lazy_signatures

log = logging.getLogger(__name__)

#: opset version -> (torchlib fingerprint, template registry).
_TEMPLATES: dict[int, tuple[tuple[int, int], Any]] = {}
#: (registered targets, size of torch's decomposition table) -> decomposition table.
_DECOMPS: dict[tuple[frozenset[Any], int], dict[Any, Any]] = {}
_LOCK = threading.RLock()


def _registration() -> Any | None:
    try:
        from torch.onnx._internal.exporter import _registration
    except ImportError:
        return None
    cls = getattr(_registration, "ONNXRegistry", None)
    if cls is None or not isinstance(cls.__dict__.get("from_torchlib"), classmethod):
        return None
    return _registration


def _apis_module(registration: Any) -> Any | None:
    """The onnxscript ``_framework_apis`` module torch reads ``get_torchlib_ops`` from."""
    lazy = getattr(registration, "onnxscript_apis", None)
    name = getattr(lazy, "_name", None)
    if not isinstance(name, str):
        return None
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    return module if callable(getattr(module, "get_torchlib_ops", None)) else None


def _onnxscript_registry() -> Any | None:
    try:
        from onnxscript.function_libs.torch_lib import ops, registration  # noqa: F401  (registers)
    except ImportError:
        return None
    return getattr(registration, "default_registry", None)


def _fingerprint(registration: Any) -> tuple[int, int]:
    """Counts of torchlib functions (onnxscript's, torch's own); a change invalidates templates."""
    registry = _onnxscript_registry()
    scripted = 0
    if registry is not None:
        for entry in registry.values():
            scripted += len(getattr(entry, "overloads", ())) + len(getattr(entry, "complex", ()))
    own = getattr(registration, "_torchlib_registry", None)
    listing = getattr(own, "get_torchlib_ops", None)  # imports torch's own ops on first call
    return scripted, len(listing()) if callable(listing) else 0


def function_domain(function: Any) -> str:
    """The ONNX domain of a torchlib function: its IR's when scripted, its opset's when traced."""
    built = getattr(function, "__dict__", {}).get("function_ir")
    if built is not None:  # OnnxFunction stores its IR as an attribute
        return str(built.domain)
    return str(function.opset.domain)  # TracedOnnxFunction: the converter takes the opset's domain


def fast_torchlib_ops(stock: Callable[[], list[Any]]) -> Callable[[], list[Any]]:
    """``get_torchlib_ops`` without re-parsing sources; same entries, same order, same fields."""
    meta_cls = getattr(sys.modules.get(stock.__module__), "_OnnxFunctionMeta", None)
    if meta_cls is None:
        raise LookupError(f"{stock.__module__} has no _OnnxFunctionMeta")

    def get_torchlib_ops() -> list[Any]:
        registry = _onnxscript_registry()
        if registry is None:
            raise LookupError("onnxscript's torchlib registry is missing")
        metas = []
        for qualified_name, entry in registry.items():
            if qualified_name.startswith("internal::"):
                continue
            pairs = [(f, False) for f in entry.overloads] + [(f, True) for f in entry.complex]
            for function, is_complex in pairs:
                metas.append(meta_cls(
                    qualified_name=qualified_name, function=function,
                    domain=function_domain(function), name=function.name, is_complex=is_complex,
                ))
        return metas

    return get_torchlib_ops


def _build(registration: Any, stock: Callable[..., Any], opset: int) -> Any:
    """The stock ``from_torchlib(opset)``, with the fast ``get_torchlib_ops`` when possible and
    signatures inferred on first use (:mod:`lazy_signatures`)."""
    with lazy_signatures.deferred(registration):
        return _build_listed(registration, stock, opset)


def _build_listed(registration: Any, stock: Callable[..., Any], opset: int) -> Any:
    cls = registration.ONNXRegistry
    apis = _apis_module(registration)
    if apis is None:
        return stock(cls, opset)
    original = apis.get_torchlib_ops
    try:
        apis.get_torchlib_ops = fast_torchlib_ops(original)
        return stock(cls, opset)
    except Exception:  # an unexpected layout: build the stock way
        log.debug("fast torchlib listing failed; building the stock way", exc_info=True)
        apis.get_torchlib_ops = original
        return stock(cls, opset)
    finally:
        apis.get_torchlib_ops = original


def copy_registry(template: Any, cls: type) -> Any:
    """A registry equal to ``template`` whose per-target lists can be changed independently."""
    fresh = cls()
    fresh.__dict__.update(template.__dict__)
    fresh.functions = {target: list(decomps) for target, decomps in template.functions.items()}
    return fresh


def registry_for(opset: int) -> Any:
    """The torchlib registry at ``opset`` (cached); raises LookupError when torch's layout differs."""
    registration = _registration()
    if registration is None:
        raise LookupError("torch.onnx._internal.exporter._registration.ONNXRegistry not found")
    stock = registration.ONNXRegistry.__dict__["from_torchlib"].__func__
    if getattr(stock, "_pipeline_cached", False):  # called while installed: reach the stock one
        stock = stock._pipeline_stock
    return _cached(registration, stock, registration.ONNXRegistry, opset)


def _cached(registration: Any, stock: Callable[..., Any], cls: type, opset: int) -> Any:
    key = _fingerprint(registration)
    with _LOCK:
        hit = _TEMPLATES.get(opset)
        if hit is None or hit[0] != key:
            _TEMPLATES[opset] = (key, _build(registration, stock, opset))
            log.debug("built the torchlib registry for opset %d", opset)
        template = _TEMPLATES[opset][1]
    return copy_registry(template, cls)


DecompTable = Callable[[set[Any]], dict[Any, Any]]


def _memoized_decompositions(stock: DecompTable) -> DecompTable:
    """``create_onnx_friendly_decomposition_table`` memoized by its argument (a copy per call)."""
    import torch._decomp

    def create_onnx_friendly_decomposition_table(onnx_registered_ops: set[Any]) -> dict[Any, Any]:
        key = (frozenset(onnx_registered_ops), len(torch._decomp.decomposition_table))
        with _LOCK:
            table = _DECOMPS.get(key)
            if table is None:
                table = _DECOMPS[key] = dict(stock(set(onnx_registered_ops)))
        return dict(table)

    create_onnx_friendly_decomposition_table._pipeline_stock = stock  # type: ignore[attr-defined]
    return create_onnx_friendly_decomposition_table


@contextlib.contextmanager
def _decompositions_cached() -> Iterator[None]:
    try:
        from torch.onnx._internal.exporter import _decomp
    except ImportError:
        yield
        return
    current = getattr(_decomp, "create_onnx_friendly_decomposition_table", None)
    if not callable(current):
        log.debug("torch's _decomp module has another layout; decompositions are built per export")
        yield
        return
    stock = getattr(current, "_pipeline_stock", current)
    _decomp.create_onnx_friendly_decomposition_table = _memoized_decompositions(stock)  # type: ignore[assignment]  # same call signature
    try:
        yield
    finally:
        _decomp.create_onnx_friendly_decomposition_table = current


@contextlib.contextmanager
def cached_registry() -> Iterator[bool]:
    """While active, ``ONNXRegistry.from_torchlib`` returns copies of a cached registry.

    Yields:
        whether the cache is installed (False: torch's layout differs; the stock path runs).
    """
    registration = _registration()
    if registration is None:
        log.debug("torch's ONNXRegistry not found; the torchlib registry is built per export")
        yield False
        return
    cls = registration.ONNXRegistry
    descriptor = cls.__dict__["from_torchlib"]
    stock = getattr(descriptor.__func__, "_pipeline_stock", descriptor.__func__)
    try:
        default = inspect.signature(stock).parameters["opset_version"].default
    except (KeyError, TypeError, ValueError):
        log.debug("unexpected from_torchlib signature; the torchlib registry is built per export")
        yield False
        return

    def from_torchlib(owner: type, opset_version: int = default) -> Any:
        return _cached(registration, stock, owner, int(opset_version))

    from_torchlib._pipeline_cached = True  # type: ignore[attr-defined]
    from_torchlib._pipeline_stock = stock  # type: ignore[attr-defined]
    with _LOCK:
        cls.from_torchlib = classmethod(from_torchlib)
    try:
        with _decompositions_cached():
            yield True
    finally:
        with _LOCK:
            cls.from_torchlib = descriptor
