"""What the HTML report shows, gathered from a JSON report of any stage.

Three report shapes are accepted, all produced by this project: stage one's
(:func:`pipeline.api.export`, keys ``stages``/``graphs``/``parity``), stage two's
(:func:`pipeline.lowering.stage.lower`, keys ``target``/``timings``/``nodes``/``mil_ops``) and
:func:`pipeline.api.convert`'s (``{"export": ..., "lower": ..., "end_to_end_parity": ...}``).
:func:`summarize` turns any of them into one :class:`ReportView`; the HTML renderer reads only
that, so the JSON stays the single source of the numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

#: Warning categories, in the order the report lists them.
CATEGORIES = ("error", "parity", "int64 saturation", "target raised", "fallback", "naming", "other")

#: Stage one's graphs in pipeline order (the report dict keeps insertion order too).
GRAPH_ORDER = ("exported", "rewritten", "simplified", "final")


@dataclasses.dataclass
class Stage:
    """One timed step: ``group`` is the pipeline stage (export/lower), ``detail`` a short note."""

    group: str
    name: str
    seconds: float
    detail: str = ""
    failed: bool = False


@dataclasses.dataclass
class Histogram:
    """Op counts per column (a graph state); ``rows`` are (op, count per column)."""

    title: str
    columns: list[str]
    rows: list[tuple[str, list[int]]]
    note: str = ""


@dataclasses.dataclass
class ParitySet:
    """One parity measurement (a ``ParityReport.to_dict()``) and what it compared."""

    title: str
    data: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        return bool(self.data.get("ok"))


@dataclasses.dataclass
class Warning_:
    """One entry of the warnings list."""

    category: str
    text: str
    origin: str


@dataclasses.dataclass
class ReportView:
    """Everything the HTML report shows, in display order."""

    title: str
    facts: list[tuple[str, str]]
    stages: list[Stage]
    rewrites: list[Mapping[str, Any]]
    histograms: list[Histogram]
    nodes: list[Mapping[str, Any]]
    parities: list[ParitySet]
    warnings: list[Warning_]
    raw: Mapping[str, Any]

    @property
    def status(self) -> str:
        """``failed`` (an error or a parity failure), ``passed`` (parity measured), or ``unverified``."""
        if any(w.category == "error" for w in self.warnings) or any(not p.ok for p in self.parities):
            return "failed"
        return "passed" if self.parities else "unverified"

    @property
    def total_seconds(self) -> float:
        return sum(s.seconds for s in self.stages)


def kind_of(report: Mapping[str, Any]) -> str:
    """``convert``, ``export`` or ``lower``: which stage wrote ``report``."""
    if "export" in report and "lower" in report:
        return "convert"
    if "mil_ops" in report or "timings" in report:
        return "lower"
    return "export"


def categorize(text: str) -> str:
    """The warning category of a message, by the phrases our stages use."""
    low = text.lower()
    if "int64" in low or "saturat" in low:
        return "int64 saturation"
    if "target raised" in low or "raised from ios" in low:
        return "target raised"
    if any(k in low for k in ("fallback", "fell back", "falling back", "custom layer")):
        return "fallback"
    if "named" in low and "core ml" in low:
        return "naming"
    return "other"


def summarize(report: Mapping[str, Any]) -> ReportView:
    """Collect the report's stages, histograms, node mapping, parity sets and warnings."""
    kind = kind_of(report)
    export = report.get("export") if kind == "convert" else (report if kind == "export" else None)
    lower = report.get("lower") if kind == "convert" else (report if kind == "lower" else None)
    view = ReportView(
        title=_title(kind, export, lower), facts=[], stages=[], rewrites=[], histograms=[],
        nodes=[], parities=[], warnings=[], raw=report,
    )
    if export:
        _add_export(view, export)
    if lower:
        _add_lower(view, lower, export)
    if kind == "convert" and report.get("end_to_end_parity"):
        view.parities.append(ParitySet("End to end: Core ML (our executor) vs PyTorch",
                                       report["end_to_end_parity"]))
    for par in view.parities:
        for out in par.data.get("outputs", []):
            if not out.get("ok", True):
                view.warnings.insert(0, Warning_(
                    "parity", f"output '{out.get('name')}' fails parity: max_abs="
                    f"{_num(out.get('max_abs'))}, {out.get('mismatches')}/{out.get('size')} "
                    f"elements beyond tolerance ({par.title})", "parity"))
    view.warnings.sort(key=lambda w: CATEGORIES.index(w.category))
    return view


def _title(kind: str, export: Mapping[str, Any] | None, lower: Mapping[str, Any] | None) -> str:
    source = (export or {}).get("source") or (lower or {}).get("source") or ""
    what = {"convert": "PyTorch → ONNX → Core ML", "export": "PyTorch → ONNX",
            "lower": "ONNX → Core ML"}[kind]
    return f"{source}: {what}" if source else what


def _num(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, (int, float)) else str(value)


def _add_export(view: ReportView, data: Mapping[str, Any]) -> None:
    view.facts.append(("Source", str(data.get("source", "?"))))
    exp = data.get("exporter") or {}
    if exp:
        used = f"{exp.get('used')} (opset {exp.get('opset')})"
        if exp.get("fallback_reason"):
            used += f", fell back from {exp.get('requested')}"
        view.facts.append(("Exporter", used))
    for entry in data.get("stages", []):
        extras = {k: v for k, v in entry.items() if k not in ("name", "seconds", "failed")}
        view.stages.append(Stage("export", str(entry.get("name")), float(entry.get("seconds", 0.0)),
                                 _detail(extras), bool(entry.get("failed"))))
    view.rewrites = list(data.get("rewrites") or [])
    graphs = data.get("graphs") or {}
    labels = [g for g in GRAPH_ORDER if g in graphs] + [g for g in graphs if g not in GRAPH_ORDER]
    if labels:
        view.histograms.append(_matrix(
            "Stage one: ONNX ops after each step", labels, [graphs[g].get("ops", {}) for g in labels]))
    if data.get("parity"):
        view.parities.append(ParitySet("Stage one: onnxruntime vs PyTorch", data["parity"]))
    for text in exp.get("warnings") or []:
        view.warnings.append(Warning_(categorize(str(text)), str(text), "export"))
    if exp.get("fallback_reason"):
        view.warnings.append(Warning_(
            "fallback", f"exporter fell back from {exp.get('requested')} to {exp.get('used')}: "
            f"{exp['fallback_reason']}", "export"))
    if data.get("error"):
        err = data["error"]
        view.warnings.append(Warning_("error", f"{err.get('type')}: {err.get('message')}", "export"))


def _add_lower(view: ReportView, data: Mapping[str, Any], export: Mapping[str, Any] | None) -> None:
    view.facts.append(("Target", f"{data.get('target')} · {data.get('backend')} · {data.get('precision')}"))
    nodes = list(data.get("nodes") or [])
    n_mil = sum((data.get("mil_ops") or {}).values())
    view.facts.append(("Graph", f"{len(nodes)} ONNX nodes → {n_mil} MIL ops"))
    for name, seconds in (data.get("timings") or {}).items():
        view.stages.append(Stage("lower", str(name), float(seconds)))
    onnx_ops = data.get("onnx_ops") or {}
    if onnx_ops:
        view.histograms.append(_matrix("Stage two: ONNX ops in", ["ONNX"], [onnx_ops]))
    if data.get("mil_ops"):
        view.histograms.append(_matrix("Stage two: MIL ops out (after coremltools' passes)",
                                       ["MIL"], [data["mil_ops"]]))
    view.nodes = nodes
    if data.get("parity"):
        view.parities.append(ParitySet("Stage two: Core ML (our executor) vs onnxruntime", data["parity"]))
    for text in data.get("warnings") or []:
        view.warnings.append(Warning_(categorize(str(text)), str(text), "lower"))
    custom = [str(n.get("node")) for n in nodes if n.get("kind") == "custom_layer"]
    if custom:
        shown = ", ".join(custom[:5]) + (" ..." if len(custom) > 5 else "")
        view.warnings.append(Warning_(
            "fallback", f"{len(custom)} node(s) became Core ML custom layers ({shown}): the app "
            "must provide their Swift/Metal implementation", "lower"))
    if data.get("error"):
        err = data["error"]
        view.warnings.append(Warning_("error", f"{err.get('type')}: {err.get('message')}", "lower"))


def _detail(extras: Mapping[str, Any]) -> str:
    parts = []
    for key, value in extras.items():
        if isinstance(value, bool):
            parts.append(f"{key}: {'yes' if value else 'no'}")
        elif isinstance(value, (int, float, str)) and len(str(value)) < 80:
            parts.append(f"{key}: {value}")
    return ", ".join(parts)


def _matrix(title: str, columns: Sequence[str], hists: Sequence[Mapping[str, int]]) -> Histogram:
    """Rows ordered by the largest count across columns, then by name."""
    ops: dict[str, list[int]] = {}
    for i, hist in enumerate(hists):
        for op, count in hist.items():
            ops.setdefault(op, [0] * len(hists))[i] = int(count)
    rows = sorted(ops.items(), key=lambda kv: (-max(kv[1]), kv[0]))
    return Histogram(title, list(columns), rows)
