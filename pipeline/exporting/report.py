"""The stage-one JSON report and the graph statistics it holds.

Layout: ``{"tool", "source", "exporter": {requested, used, opset, fallback_reason, seconds},
"stages": [{name, seconds, nodes, ...}], "graphs": {stage: {nodes, ops}}, "symbolics",
"rewrites": [pass records], "parity": ParityReport.to_dict(), "bisect": [...], "error"}``.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import onnx

log = logging.getLogger(__name__)


def op_histogram(model: onnx.ModelProto) -> dict[str, int]:
    """Node count per ``domain::op_type`` (default domain shown bare), most frequent first."""
    counts = collections.Counter(
        f"{n.domain}::{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type
        for n in model.graph.node
    )
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def graph_stats(model: onnx.ModelProto) -> dict[str, Any]:
    """Node count, op histogram, initializer count and opsets of a model."""
    return {
        "nodes": len(model.graph.node),
        "initializers": len(model.graph.initializer),
        "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "ops": op_histogram(model),
    }


class Recorder:
    """Collects the report while the stages run, and drives an optional progress callback.

    Args:
        on_stage: called with the stage name when a stage starts (e.g. to advance a progress bar).
    """

    def __init__(self, on_stage: Callable[[str], None] | None = None) -> None:
        self.data: dict[str, Any] = {"tool": "pipeline.export", "stages": [], "graphs": {}}
        self._on_stage = on_stage

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[dict[str, Any]]:
        """Time a stage; the yielded dict becomes its report entry (add fields to it)."""
        if self._on_stage is not None:
            self._on_stage(name)
        entry: dict[str, Any] = {"name": name}
        start = time.perf_counter()
        log.info("stage %s ...", name)
        try:
            yield entry
        except BaseException:
            entry["failed"] = True
            raise
        finally:
            entry["seconds"] = round(time.perf_counter() - start, 4)
            self.data["stages"].append(entry)
            log.info("stage %s done in %.2fs", name, entry["seconds"])

    def graph(self, label: str, model: onnx.ModelProto) -> None:
        """Record the statistics of the model as it is after stage ``label``."""
        self.data["graphs"][label] = graph_stats(model)
