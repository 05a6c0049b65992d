"""The conversion report as one self-contained HTML file (inline CSS, script and SVG plots).

Sections (ids in brackets): summary facts, stages and wall times [stages], op histograms before
and after each stage [histograms], node mapping ONNX -> MIL [nodes], per-output parity with error
plots [parity], warnings [warnings], and the JSON twin [json], embedded verbatim so that the page
and the JSON report can never disagree.
"""

from __future__ import annotations

import datetime
import html
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.inspecting import plots
from pipeline.inspecting.assets import CSS, SCRIPT
from pipeline.inspecting.summary import Histogram, ParitySet, ReportView, summarize

log = logging.getLogger(__name__)

#: Parity plots drawn per measurement; further outputs get table rows only (a page, not a book).
MAX_PLOTS = 8

_e = html.escape


def render(report: Mapping[str, Any]) -> str:
    """The HTML page for a JSON report of export, lower or convert (see :mod:`.summary`)."""
    view = summarize(report)
    parts = [
        _head(view),
        "<main>",
        _facts(view),
        _stages(view),
        _histograms(view),
        _nodes(view),
        _parity(view),
        _warnings(view),
        _json(report),
        "</main>",
        (f"<footer>Written by onnx2coreml-pipeline on "
         f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}. The JSON report holds the same "
         "data.</footer>"),
        f"<script>{SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts)


def write(report: Mapping[str, Any], path: str | Path) -> Path:
    """Render ``report`` and write it to ``path`` atomically; returns the path."""
    from pipeline.exporting.atomic import write_bytes

    target = write_bytes(path, render(report).encode("utf-8"))
    log.info("HTML report written to %s", target)
    return target


def _head(view: ReportView) -> str:
    status = view.status
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(view.title)}: conversion report</title><style>{CSS}</style></head><body>"
        f"<header><h1>{_e(view.title)}<span class='badge {status}' id='status'>{status}</span></h1>"
        "<div class='sub'>Conversion report: stages, op histograms, node mapping, parity, "
        "warnings</div></header>"
        "<nav><a href='#stages'>Stages</a><a href='#histograms'>Op histograms</a>"
        "<a href='#nodes'>Node mapping</a><a href='#parity'>Parity</a>"
        f"<a href='#warnings'>Warnings ({len(view.warnings)})</a><a href='#json'>JSON</a></nav>"
    )


def _facts(view: ReportView) -> str:
    facts = list(view.facts)
    facts.append(("Wall time", f"{view.total_seconds:.2f} s"))
    if view.parities:
        worst = max((_f(o.get("max_abs")) for p in view.parities for o in p.data.get("outputs", [])),
                    default=0.0)
        facts.append(("Worst parity error", f"max |error| {worst:.3g}"))
    cards = "".join(f"<div class='fact'><div class='k'>{_e(k)}</div><div class='v'>{_e(v)}</div></div>"
                    for k, v in facts)
    return f"<div class='facts' id='facts'>{cards}</div>"


def _f(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("inf")


def _stages(view: ReportView) -> str:
    longest = max((s.seconds for s in view.stages), default=0.0) or 1.0
    rows = []
    for s in view.stages:
        width = 100.0 * s.seconds / longest
        failed = " <span class='bad'>failed</span>" if s.failed else ""
        rows.append(
            f"<tr><td><span class='chip {s.group}'>{s.group}</span></td><td>{_e(s.name)}{failed}</td>"
            f"<td class='barcell'><div class='bar {s.group}' style='width:{width:.1f}%'></div></td>"
            f"<td class='num'>{s.seconds:.3f} s</td><td>{_e(s.detail)}</td></tr>"
        )
    body = "".join(rows) or "<tr><td colspan='5' class='none'>no stage timings recorded</td></tr>"
    out = [
        ("<section id='stages'><h2>Stages and wall times</h2><table><thead><tr><th>stage</th>"
         "<th>step</th><th>wall time</th><th class='num'>seconds</th><th>detail</th></tr></thead>"
         f"<tbody>{body}</tbody></table>")
    ]
    if view.rewrites:
        out.append(_rewrites(view.rewrites))
    out.append("</section>")
    return "".join(out)


def _rewrites(records: list[Mapping[str, Any]]) -> str:
    rows = []
    idle = [str(r.get("name")) for r in records if not r.get("changed")]
    for r in records:
        changed = bool(r.get("changed"))
        if not changed:
            continue
        delta = _hist_delta(r.get("op_histogram_before") or {}, r.get("op_histogram_after") or {})
        rows.append(
            f"<tr><td><code>{_e(str(r.get('name')))}</code></td>"
            f"<td>{'<span class=ok>changed</span>' if changed else '<span class=none>no change</span>'}</td>"
            f"<td class='num'>{r.get('nodes_before', '')} → {r.get('nodes_after', '')}</td>"
            f"<td>{_e(delta)}</td><td class='num'>{_f(r.get('seconds')):.3f} s</td></tr>"
        )
    if idle:
        rows.append(f"<tr><td colspan='5' class='none'>no change: {_e(', '.join(idle))}</td></tr>")
    n_changed = len(records) - len(idle)
    return (
        f"<h3>Rewrite passes ({n_changed} of {len(records)} changed the graph)</h3><table><thead><tr>"
        "<th>pass</th><th>effect</th><th class='num'>nodes</th><th>ops</th><th class='num'>time</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _hist_delta(before: Mapping[str, int], after: Mapping[str, int]) -> str:
    changes = []
    for op in sorted(set(before) | set(after)):
        d = int(after.get(op, 0)) - int(before.get(op, 0))
        if d:
            changes.append(f"{op} {d:+d}")
    return ", ".join(changes)


def _histograms(view: ReportView) -> str:
    if not view.histograms:
        return "<section id='histograms'><h2>Op histograms</h2><p class='none'>none recorded</p></section>"
    stage_one = [h for h in view.histograms if len(h.columns) > 1]
    singles = [h for h in view.histograms if len(h.columns) == 1]
    out = ["<section id='histograms'><h2>Op histograms</h2>",
           ("<div class='legend'>Cells that changed from the previous step are shaded: "
            "<span class='chip composite'>more</span> <span class='chip native'>fewer</span></div>")]
    out += [_matrix(h) for h in stage_one]
    if singles:
        out.append("<div class='hgrid'>" + "".join(f"<div>{_matrix(h)}</div>" for h in singles) + "</div>")
    out.append("</section>")
    return "".join(out)


def _matrix(h: Histogram) -> str:
    peak = max((max(c) for _, c in h.rows), default=1) or 1
    head = "".join(f"<th class='num'>{_e(c)}</th>" for c in h.columns)
    rows = []
    for op, counts in h.rows:
        cells = []
        for i, count in enumerate(counts):
            cls = "cnt"
            if i and count != counts[i - 1]:
                cls += " up" if count > counts[i - 1] else " down"
            elif count == 0:
                cls += " zero"
            bar = f"<span class='hbar' style='width:{60.0 * count / peak:.0f}px'></span>" if count else ""
            cells.append(f"<td class='{cls}'>{count}{bar}</td>")
        rows.append(f"<tr><td><code>{_e(op)}</code></td>{''.join(cells)}</tr>")
    totals = "".join(f"<td class='cnt'><b>{sum(c[i] for _, c in h.rows)}</b></td>"
                     for i in range(len(h.columns)))
    return (
        f"<h3>{_e(h.title)}</h3><table class='hist'><thead><tr><th>op</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}<tr><td><b>total</b></td>{totals}</tr></tbody></table>"
    )


def _nodes(view: ReportView) -> str:
    if not view.nodes:
        return ("<section id='nodes'><h2>Node mapping: ONNX → MIL</h2><p class='none'>no stage-two "
                "data in this report (export only)</p></section>")
    kinds: dict[str, int] = {}
    rows = []
    for i, n in enumerate(view.nodes):
        kind = str(n.get("kind", ""))
        kinds[kind] = kinds.get(kind, 0) + 1
        op = f"{n.get('domain')}::{n.get('op_type')}" if n.get("domain") else str(n.get("op_type"))
        mil = "".join(f"<span class='chip mil'>{_e(str(m))}</span>" for m in n.get("mil_ops") or [])
        outs = ", ".join(_e(str(o)) for o in n.get("outputs") or [])
        rows.append(
            f"<tr><td class='num'>{i}</td><td><code>{_e(str(n.get('node')))}</code></td>"
            f"<td><code>{_e(op)}</code></td><td><span class='chip {_e(kind)}'>{_e(kind)}</span></td>"
            f"<td>{mil or '<span class=none>none (folded or aliased)</span>'}</td>"
            f"<td class='mono'>{outs}</td><td class='mono'>{_e(str(n.get('source') or ''))}</td></tr>"
        )
    chips = " ".join(f"<span class='chip {_e(k)}'>{_e(k)}: {v}</span>" for k, v in sorted(kinds.items()))
    return (
        f"<section id='nodes'><h2>Node mapping: ONNX → MIL</h2><div class='legend'>{len(view.nodes)} "
        f"ONNX nodes: {chips}</div><input id='node-filter' class='filter' placeholder='filter nodes, "
        "ops, sources…'><div class='scroll'><table id='node-table'><thead><tr><th class='num'>#</th>"
        "<th>ONNX node</th><th>op</th><th>kind</th><th>MIL ops</th><th>outputs (= MIL value names)"
        f"</th><th>PyTorch source</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _parity(view: ReportView) -> str:
    out = ["<section id='parity'><h2>Parity</h2>"]
    if not view.parities:
        out.append("<p class='none'>parity was not measured</p>")
    for index, par in enumerate(view.parities):
        out.append(_parity_set(index, par))
    out.append("</section>")
    return "".join(out)


def _parity_set(index: int, par: ParitySet) -> str:
    data = par.data
    atol, rtol = _f(data.get("atol")), _f(data.get("rtol"))
    verdict = "<span class='ok'>passed</span>" if par.ok else "<span class='bad'>FAILED</span>"
    rows: list[str] = []
    figures: list[str] = []
    for o in data.get("outputs", []):
        ok = "<span class='ok'>ok</span>" if o.get("ok") else "<span class='bad'>fail</span>"
        shape = "×".join(str(d) for d in o.get("shape") or []) or "scalar"
        rows.append(
            f"<tr><td><code>{_e(str(o.get('name')))}</code></td><td class='mono'>{_e(shape)} "
            f"{_e(str(o.get('dtype')))}</td><td class='num'>{_f(o.get('max_abs')):.3g}</td>"
            f"<td class='num'>{_f(o.get('max_rel')):.3g}</td><td class='num'>{_f(o.get('cosine')):.6f}</td>"
            f"<td class='num'>{o.get('mismatches')}/{o.get('size')}</td><td>{ok} "
            f"{_e(str(o.get('note') or ''))}</td></tr>"
        )
        if len(figures) < MAX_PLOTS:
            svg = plots.error_distribution(o, atol, rtol)
            if svg is None and o.get("histogram") and o.get("size"):
                figures.append(f"<p class='none'><code>{_e(str(o.get('name')))}</code>: all "
                               f"{o.get('size')} elements identical, no error to plot</p>")
            elif svg is not None:
                figures.append(
                    f"<figure class='plot' id='plot-{index}-{len(figures)}'>{svg}<figcaption>"
                    f"<code>{_e(str(o.get('name')))}</code>: error distribution over "
                    f"{o.get('size')} elements (left: absolute error; right: error relative to "
                    "the allowed atol + rtol·|reference|, red beyond tolerance)</figcaption></figure>"
                )
    more = len(data.get("outputs", [])) - len(figures)
    note = f"<p class='none'>{more} output(s) without a plot</p>" if more > 0 and figures else ""
    return (
        f"<div class='parity{'' if par.ok else ' fail'}'><h3>{_e(par.title)}: {verdict}</h3>"
        f"<div class='legend'>tolerance: |candidate − reference| ≤ {atol:g} + {rtol:g}·|reference|</div>"
        "<table><thead><tr><th>output</th><th>shape</th><th class='num'>max abs</th>"
        "<th class='num'>max rel</th><th class='num'>cosine</th><th class='num'>mismatches</th>"
        f"<th>status</th></tr></thead><tbody>{''.join(rows)}</tbody></table>{''.join(figures)}{note}</div>"
    )


def _warnings(view: ReportView) -> str:
    if not view.warnings:
        items = "<p class='none'>No warnings: no int64 saturation, no target change, no fallback.</p>"
    else:
        items = "<ul class='warnings'>" + "".join(
            f"<li class='{w.category.split()[0]}'><span class='cat'>{_e(w.category)}</span>"
            f"<span class='chip {w.origin if w.origin in ('export', 'lower') else 'mil'}'>"
            f"{_e(w.origin)}</span>{_e(w.text)}</li>"
            for w in view.warnings
        ) + "</ul>"
    return f"<section id='warnings'><h2>Warnings</h2>{items}</section>"


def _json(report: Mapping[str, Any]) -> str:
    text = json.dumps(report, indent=2, default=str)
    # "</" would end the <script> element early; JSON allows the escaped form.
    embedded = text.replace("</", "<\\/")
    return (
        "<section id='json'><h2>JSON report</h2><details><summary>show the machine-readable twin "
        f"({len(text) // 1024 + 1} KB)</summary><pre class='json'>{_e(text)}</pre></details>"
        f"<script type='application/json' id='report-data'>{embedded}</script></section>"
    )
