"""The public API names stay functions after importing every pipeline submodule.

Importing a CLI shim such as ``pipeline/export.py`` would rebind ``pipeline.export`` to a module;
nothing may do that.
"""

from __future__ import annotations

import importlib
import pkgutil
import types

import pipeline

SHIMS = {"pipeline.export", "pipeline.lower", "pipeline.verify", "pipeline.inspect"}


def test_api_names_are_callables_after_importing_everything() -> None:
    for info in pkgutil.walk_packages(pipeline.__path__, "pipeline."):
        if info.name in SHIMS:
            continue
        importlib.import_module(info.name)
    importlib.import_module("pipeline.cli.export")
    for name in ("export", "execute"):
        value = getattr(pipeline, name)
        assert isinstance(value, types.FunctionType), f"pipeline.{name} is {type(value).__name__}"
