"""User extensions: Python files that register symbolics, rewrites, composites or handlers.

``--extensions FILE`` (export and lower commands) and ``extensions=[...]`` (:func:`pipeline.convert`,
:func:`pipeline.lower`, :func:`pipeline.export`) import each file once per process, as a module
named after it; its decorators (``@symbolics.symbolic``, ``@register_composite``,
``@onnx_op(..., user=True)``, ``@rewrites.register_pass``) register entries that win over the
built-in ones.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from pipeline.errors import ExtensionError

log = logging.getLogger(__name__)

_LOADED: dict[Path, ModuleType] = {}


def load_extension(path: str | os.PathLike[str]) -> ModuleType:
    """Import the Python file ``path`` (once per process) and return its module.

    Raises:
        ExtensionError: the file does not exist, is not a .py file, or raises on import.
    """
    file = Path(path).expanduser().resolve()
    if file in _LOADED:
        return _LOADED[file]
    if not file.is_file() or file.suffix != ".py":
        raise ExtensionError(f"extensions: {path} is not a Python file; pass the path of a .py file")
    name = "pipeline_extension_" + re.sub(r"\W", "_", file.stem) + f"_{len(_LOADED)}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ExtensionError(f"extensions: cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a user file may raise anything
        sys.modules.pop(name, None)
        raise ExtensionError(
            f"extensions: importing {path} raised {type(exc).__name__}: {exc}; fix the file"
        ) from exc
    _LOADED[file] = module
    log.info("loaded extension %s", file)
    return module


def load_extensions(paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None) -> list[ModuleType]:
    """Import every file of ``paths`` (a path, a list of paths, or None)."""
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return [load_extension(p) for p in paths]


#: (domain, op type) -> a standard-ONNX body (``onnx.FunctionProto`` or an onnxscript function)
#: that :func:`attach_bodies` adds to exported models using that op, so onnxruntime can run them.
BODIES: dict[tuple[str, str], object] = {}


def register_body(domain: str, op_type: str, body: object) -> None:
    """Declare the standard-ONNX body of a user custom-domain op (see README, 'Adding an op')."""
    BODIES[(domain, op_type)] = body


def attach_bodies(model: Any) -> None:
    """Add a model-local function for each registered custom op ``model`` uses but lacks."""
    import onnx

    have = {(f.domain, f.name) for f in model.functions}
    used = {(n.domain, n.op_type) for n in model.graph.node if n.domain}
    for key in sorted(used - have):
        body = BODIES.get(key)
        if body is None:
            continue
        proto = body if isinstance(body, onnx.FunctionProto) else body.to_function_proto()  # type: ignore[attr-defined]  # onnxscript function
        model.functions.append(proto)
        domains = {i.domain for i in model.opset_import}
        for imp in proto.opset_import:
            if imp.domain not in domains:
                model.opset_import.append(imp)
                domains.add(imp.domain)
        if key[0] not in domains:
            model.opset_import.append(onnx.helper.make_opsetid(key[0], 1))
