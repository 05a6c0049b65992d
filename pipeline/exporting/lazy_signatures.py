"""ONNX signatures of torchlib functions, inferred when a function is first called.

Building the dynamo exporter's registry infers an ONNX signature for each of ~590 torchlib
functions from its type annotations (``OnnxDecompMeta.__post_init__``, ~0.15-0.35 s: most of a
small model's export).  torch's dispatcher never reads those signatures; only the graph builder
does, through ``function._pt_onnx_signature``, and only for the functions a model calls.

While :func:`deferred` is active (around one registry build), non-custom registry entries skip
the inference.  The function classes keep, from the first build on, a ``_pt_onnx_signature``
property that infers the same signature on first read (the stock arguments: a scripted function's IR domain, name and opset
version; ``"__traced"`` and the name for a traced one) and keeps it.  Custom entries (user
translations) are inferred eagerly as before, with torch's own error handling.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

_ATTRIBUTE = "_pt_onnx_signature"
_STORE = "_pipeline_onnx_signature"


def infer(function: Any) -> Any:
    """The signature torch's registration would infer for ``function``."""
    import onnxscript
    from torch.onnx._internal.exporter import _schemas

    if isinstance(function, onnxscript.OnnxFunction):
        return _schemas.op_signature_from_function(
            function, function.function_ir.domain, function.name,
            since_version=function.opset.version)
    return _schemas.op_signature_from_function(function, "__traced", function.__name__)


def _get(self: Any) -> Any:
    store = self.__dict__
    if _STORE not in store:
        store[_STORE] = infer(self)
    return store[_STORE]


def _set(self: Any, value: Any) -> None:
    self.__dict__[_STORE] = value


def _install_property(classes: tuple[type, ...]) -> bool:
    """Give each class the lazy property; False when one already has another attribute there."""
    for cls in classes:
        current = cls.__dict__.get(_ATTRIBUTE)
        if current is None:
            continue
        if not (isinstance(current, property) and current.fget is _get):
            return False
    for cls in classes:
        if _ATTRIBUTE not in cls.__dict__:
            setattr(cls, _ATTRIBUTE, property(_get, _set))
    return True


def _function_classes() -> tuple[type, ...] | None:
    try:
        import onnxscript
        from onnxscript.values import TracedOnnxFunction
    except ImportError:
        return None
    return (onnxscript.OnnxFunction, TracedOnnxFunction)


@contextlib.contextmanager
def deferred(registration: Any) -> Iterator[bool]:
    """Defer signature inference of the registry entries built while active.

    Yields:
        whether inference is deferred (False: another layout; entries infer eagerly).
    """
    meta_cls: Any = getattr(registration, "OnnxDecompMeta", None)
    stock = getattr(meta_cls, "__post_init__", None)
    classes = _function_classes()
    if stock is None or classes is None or "is_custom" not in getattr(
            meta_cls, "__dataclass_fields__", {}) or not _install_property(classes):
        log.debug("torchlib signatures are inferred eagerly (unexpected layout)")
        yield False
        return

    def post_init(self: Any) -> None:
        if self.is_custom:
            stock(self)

    meta_cls.__post_init__ = post_init
    try:
        yield True
    finally:
        meta_cls.__post_init__ = stock
