"""Adapter to the ``rewrites`` package: list passes, run a selection with a per-pass callback.

Works before the package exists (no passes), so stage one never depends on it being complete.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

import onnx

from pipeline.errors import PipelineError, RewriteError

log = logging.getLogger(__name__)

AfterEach = Callable[[str, onnx.ModelProto], None]


def _rewrites() -> Any | None:
    try:
        import rewrites
    except ImportError:
        return None
    return rewrites if hasattr(rewrites, "run_passes") else None


def list_passes() -> list[tuple[str, str, bool]]:
    """(name, one-line description, on by default) of every rewrite pass."""
    mod = _rewrites()
    fn = getattr(mod, "list_passes", None)
    return list(fn()) if fn is not None else []


def check_selection(select: Sequence[str] | None, disable: Sequence[str]) -> None:
    """Every named pass exists."""
    known = {name for name, _, _ in list_passes()}
    unknown = [n for n in list(select or []) + list(disable) if n not in known]
    if unknown:
        raise RewriteError(
            f"rewrites: unknown pass(es) {', '.join(unknown)}; known: "
            f"{', '.join(sorted(known)) or 'none'} (see --list-rewrites)"
        )


def record_dict(record: Any) -> dict[str, Any]:
    """A pass record as a JSON-able dict."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return dataclasses.asdict(record)
    fields = ("name", "nodes_before", "nodes_after", "changed", "seconds")
    return {f: getattr(record, f, None) for f in fields}


def run(
    model: onnx.ModelProto,
    *,
    select: Sequence[str] | None = None,
    disable: Sequence[str] = (),
    after_each: AfterEach | None = None,
) -> tuple[onnx.ModelProto, list[dict[str, Any]]]:
    """Run the rewrite passes; returns the model and one record dict per pass.

    Raises:
        RewriteError: a pass failed (or ``after_each`` found it broke the model).
    """
    mod = _rewrites()
    if mod is None:
        if select:
            raise RewriteError("rewrites: the rewrites package provides no passes yet")
        return model, []
    check_selection(select, disable)
    try:
        out, records = mod.run_passes(
            model, select=list(select) if select is not None else None,
            disable=list(disable), after_each=after_each,
        )
    except PipelineError:
        raise
    except Exception as exc:  # a pass bug must not become a traceback
        raise RewriteError(f"rewrites: a pass failed ({type(exc).__name__}: {exc})") from exc
    return out, [record_dict(r) for r in records]
