"""Plots for the HTML report, drawn with matplotlib (Agg) and returned as inline SVG text.

* :func:`error_distribution` - one output's parity error histogram: log10 |error| with the
  absolute tolerance marked, and log10 (|error| / allowed) with the pass/fail line at 1.
"""

from __future__ import annotations

import io
import itertools
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

PASS_COLOR = "#2f9e6e"
FAIL_COLOR = "#d9480f"
NEUTRAL_COLOR = "#4c6ef5"
_ids = itertools.count()


def _svg(fig: Any) -> str:
    """The figure as an ``<svg>`` element (XML prolog and DOCTYPE removed), then closed."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    # A fresh salt per figure keeps clip-path ids unique when many SVGs share one page.
    with plt.rc_context({"svg.hashsalt": f"plot{next(_ids)}", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):] if "<svg" in text else text


def _bars(ax: Any, edges: Sequence[float], bucket: Mapping[str, Any], limit: float | None,
          xlabel: str, limit_label: str, fail_above: bool) -> None:
    counts = list(bucket.get("counts") or [])
    lefts = list(edges[:-1])
    widths = [b - a for a, b in itertools.pairwise(edges)]
    colors = [
        FAIL_COLOR if fail_above and limit is not None and left >= limit else
        (PASS_COLOR if fail_above else NEUTRAL_COLOR)
        for left in lefts
    ]
    ax.bar(lefts, counts, width=widths, align="edge", color=colors, edgecolor="white", linewidth=0.5)
    if limit is not None and edges[0] <= limit <= edges[-1]:
        ax.axvline(limit, color="#212529", linestyle="--", linewidth=1)
        ax.annotate(limit_label, (limit, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(3, -10), textcoords="offset points", fontsize=7.5, color="#212529")
    nonzero = [i for i, c in enumerate(counts) if c]
    if nonzero:  # zoom on the occupied decades, with the limit line in view
        lo = edges[max(nonzero[0] - 2, 0)]
        hi = edges[min(nonzero[-1] + 3, len(edges) - 1)]
        if limit is not None:
            lo, hi = min(lo, limit - 1), max(hi, limit + 1)
        ax.set_xlim(max(lo, edges[0]), min(hi, edges[-1]))
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("elements", fontsize=8)
    ax.tick_params(labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    extra = [f"{bucket[k]} {k.replace('zeros', 'exact')}" for k in ("zeros", "under", "over", "nonfinite")
             if bucket.get(k)]
    if extra:
        ax.set_title("  ·  ".join(extra), fontsize=7.5, color="#495057", loc="left")


def error_distribution(output: Mapping[str, Any], atol: float, rtol: float) -> str | None:
    """Two panels for one output's ``histogram`` (see :func:`pipeline.parity.error_histogram`).

    Returns:
        the SVG text, or None when the output carries no histogram (old report, or a shape
        mismatch / bool output).
    """
    hist = output.get("histogram")
    if not hist or not has_errors(hist):
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    edges = [float(e) for e in hist["log10_edges"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.6, 2.2), dpi=96)
    atol_log = _log10(atol)
    _bars(left, edges, hist["abs"], atol_log, "log10 |error|", f"atol {atol:g}", fail_above=False)
    _bars(right, edges, hist["ratio"], 0.0, "log10 (|error| / (atol + rtol·|ref|))",
          "tolerance", fail_above=True)
    fig.tight_layout(pad=0.6)
    return _svg(fig)


def has_errors(hist: Mapping[str, Any]) -> bool:
    """Whether any element differs at all (an all-exact output has nothing to plot)."""
    bucket = hist.get("abs") or {}
    return bool(sum(bucket.get("counts") or []) or bucket.get("under") or bucket.get("over")
                or bucket.get("nonfinite"))


def _log10(value: float) -> float | None:
    import math

    return math.log10(value) if value > 0 else None


def svg_size(svg: str) -> tuple[float, float]:
    """Width and height in points of an SVG produced here (for tests and layout)."""
    match = re.search(r'width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    return (float(match.group(1)), float(match.group(2))) if match else (0.0, 0.0)
