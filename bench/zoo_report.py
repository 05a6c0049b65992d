"""Tables, summary lines and plots of ``bench/zoo.py`` from its rows.

A row is ``{"model", "family", "note", "ours": cell, "ours_ts": cell, "apple": cell, "onnxsim":
cell}`` (``ours_ts``: ours with the TorchScript exporter instead of the default dynamo); a cell
is what :mod:`zoo_paths` returned plus ``wall_s`` and ``peak_mb`` (see :mod:`_measure`), or
``{"error": first line}``.  Times: ``convert_s`` is PyTorch (ours, Apple) or ONNX (onnxsim) to
``MLModel``, without the parity runs; ``stage2_s`` is ONNX (ours) / TorchScript (Apple) to
``MLModel``.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

PATHS = ("ours", "ours_ts", "apple", "onnxsim")
#: The paths of the main table's triple columns (ours_ts gets a column of its own).
MAIN = ("ours", "apple", "onnxsim")
LABELS = {"ours": "ours", "ours_ts": "ours, --exporter torchscript", "apple": "coremltools frontend",
          "onnxsim": "onnxsim export_coreml"}
COLORS = {"ours": "#1f77b4", "ours_ts": "#9ecae1", "apple": "#7f7f7f", "onnxsim": "#ff7f0e"}
NOT_MEASURED = {"error": "not measured"}


def cell(row: dict[str, Any], path: str) -> dict[str, Any]:
    """The row's cell for ``path`` (rows of older runs may lack a path)."""
    return row.get(path) or NOT_MEASURED


def converted(cell: dict[str, Any]) -> bool:
    """The path produced a Core ML model (its parity may still fail)."""
    return "error" not in cell and "ops" in cell


def verified(cell: dict[str, Any]) -> bool:
    """The path produced a model whose outputs match the reference within tolerance."""
    return converted(cell) and bool(cell.get("ok"))


def status(cell: dict[str, Any]) -> str:
    if verified(cell):
        return "ok"
    if converted(cell):
        return "parity"
    return "timeout" if "timed out" in cell.get("error", "") else "fail"


def _num(cell: dict[str, Any], key: str, fmt: str) -> str:
    return format(cell[key], fmt) if converted(cell) and key in cell else "-"


def _triple(row: dict[str, Any], key: str, fmt: str) -> str:
    return " / ".join(_num(cell(row, p), key, fmt) for p in MAIN)


def table(rows: list[dict[str, Any]]) -> str:
    """The main markdown table: status, time, ops, memory and error per path."""
    head = (
        "| model | ours | Apple | onnxsim | convert s (ours / Apple / onnxsim) | MIL ops "
        "(ours / Apple / onnxsim) | peak MB (ours / Apple / onnxsim) | max abs err "
        "(ours / Apple / onnxsim) | max abs output | ours, TorchScript exporter: status, s, ops |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        peak = " / ".join(f"{cell(row, p)['peak_mb']:.0f}" if "peak_mb" in cell(row, p) else "-" for p in MAIN)
        ts = cell(row, "ours_ts")
        lines.append(
            f"| {row['model']} | {status(row['ours'])} | {status(row['apple'])} | "
            f"{status(row['onnxsim'])} | {_triple(row, 'convert_s', '.2f')} | "
            f"{_triple(row, 'ops', 'd')} | {peak} | {_triple(row, 'max_abs', '.2g')} | "
            f"{_num(row['ours'], 'ref_max', '.2g')} | {status(ts)}, {_num(ts, 'convert_s', '.2f')}, "
            f"{_num(ts, 'ops', 'd')} |"
        )
    return "\n".join(lines)


def stage_table(rows: list[dict[str, Any]]) -> str:
    """Seconds per stage and path (the parity runs included)."""
    lines = ["| model | path | stages (s) | subprocess wall s |", "|---|---|---|---|"]
    for row in rows:
        for path in PATHS:
            one = cell(row, path)
            stages = ", ".join(f"{k} {v:.2f}" for k, v in one.get("stages", {}).items()) or "-"
            wall = f"{one['wall_s']:.1f}" if "wall_s" in one else "-"
            lines.append(f"| {row['model']} | {path} | {stages} | {wall} |")
    return "\n".join(lines)


def failures(rows: list[dict[str, Any]]) -> str:
    """First error line (or parity note) of every path that did not verify."""
    lines = []
    for row in rows:
        for path in PATHS:
            one = cell(row, path)
            if verified(one) or one is NOT_MEASURED:
                continue
            why = one.get("error") or one.get("parity_note", "parity failed")
            extra = f" (trace failed first: {one['trace_error']})" if one.get("trace_error") else ""
            lines.append(f"- {row['model']} [{path}]: {why}{extra}")
    return "\n".join(lines) or "- none"


def _ratio(rows: list[dict[str, Any]], peer: str, key: str, mine: str = "ours") -> tuple[float | None, int]:
    pairs = [(cell(r, mine), cell(r, peer)) for r in rows]
    ratios = [a[key] / b[key] for a, b in pairs if converted(a) and converted(b) and b.get(key, 0) > 0]
    return (statistics.median(ratios) if ratios else None), len(ratios)


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's summary lines and its targets, met or not."""
    n = len(rows)
    out = []
    for path in PATHS:
        if path not in MAIN and not any(path in r for r in rows):
            continue  # an optional path no row measured
        conv = sum(converted(cell(r, path)) for r in rows)
        ver = sum(verified(cell(r, path)) for r in rows)
        out.append(f"{LABELS[path]}: converted {conv}/{n}, verified {ver}/{n}")
    apple_ratio, apple_n = _ratio(rows, "apple", "convert_s")
    ts_ratio, ts_n = _ratio(rows, "apple", "convert_s", mine="ours_ts")
    sim_ratio, sim_n = _ratio(rows, "onnxsim", "stage2_s")
    if apple_ratio is not None:
        out.append(f"median conversion time ours/coremltools (PyTorch -> MLModel): "
                   f"{apple_ratio:.2f}x over {apple_n} models (target <= 1.0)")
    if ts_ratio is not None:
        out.append(f"median conversion time ours with --exporter torchscript/coremltools: "
                   f"{ts_ratio:.2f}x over {ts_n} models")
    if sim_ratio is not None:
        out.append(f"median conversion time ours/onnxsim (ONNX -> MLModel, same file): "
                   f"{sim_ratio:.2f}x over {sim_n} models")
    more = []
    for r in rows:
        if not converted(r["ours"]):
            continue
        peers = [f"{p} {r[p]['ops']}" for p in ("apple", "onnxsim")
                 if converted(r[p]) and r["ours"]["ops"] > r[p]["ops"]]
        if peers:
            more.append(f"{r['model']} (ours {r['ours']['ops']} > {', '.join(peers)})")
    out.append(f"models where ours has more MIL ops than a peer: {'; '.join(more) or 'none'}")
    for done, verb in ((converted, "converts"), (verified, "verifies")):
        missed = [r["model"] for r in rows
                  if not done(r["ours"]) and (done(r["apple"]) or done(r["onnxsim"]))]
        out.append(f"models a peer {verb} but ours does not: {', '.join(missed) or 'none'}")
    unverified = [r["model"] for r in rows if not verified(r["ours"])]
    out.append(f"ours does not verify {len(unverified)} model(s) (target <= 2): "
               f"{', '.join(unverified) or 'none'}")
    return out


def markdown(rows: list[dict[str, Any]], header: str) -> str:
    """The whole markdown report."""
    return "\n\n".join([
        f"# Model zoo benchmark\n\n{header}",
        "## Summary\n\n" + "\n".join(f"- {line}" for line in summary(rows)),
        "## Models\n\nStatus: ok = converted and verified; parity = converted, outputs differ; "
        "fail = no model.\n\n" + table(rows),
        "## Failures (first line)\n\n" + failures(rows),
        "## Stage times\n\n" + stage_table(rows),
    ]) + "\n"


def _bars(rows: list[dict[str, Any]], key: str, fmt: str, xlabel: str, title: str,
          path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["model"] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.8 * len(rows)))
    paths = [p for p in PATHS if any(converted(cell(r, p)) for r in rows)]
    height = 0.8 / max(len(paths), 1)
    values = [cell(r, p)[key] for r in rows for p in paths if converted(cell(r, p)) and cell(r, p).get(key)]
    floor = min(values) / 2 if values else 0.1
    for k, p in enumerate(paths):
        ys = [i + (k - (len(paths) - 1) / 2) * height for i in range(len(rows))]
        cells = [cell(r, p) for r in rows]
        xs = [c[key] if converted(c) and c.get(key) else 0 for c in cells]
        ax.barh(ys, xs, height=height, color=COLORS[p], label=LABELS[p])
        for y, c in zip(ys, cells):
            if not converted(c):
                ax.text(floor * 1.05, y, f"{p}: {status(c)}", va="center", fontsize=7,
                        color=COLORS[p])
            else:
                mark = "" if verified(c) else "  parity ✗"
                ax.text(c[key] * 1.04, y, f"{c[key]:{fmt}}{mark}", va="center", fontsize=7,
                        color="red" if mark else "black")
    ax.set_xscale("log")
    top = max(values) if values else 1.0
    ax.set_xlim(left=floor, right=top * 2)  # room for the value labels
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(names, fontsize=9)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first model on top, no empty margins
    ax.set_xlabel(xlabel)
    ax.set_title(title, pad=24)
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=4, fontsize=9, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plots(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """conversion time and op count per model by path, as horizontal grouped bars (log scale)."""
    time_png, ops_png = folder / "zoo_time.png", folder / "zoo_ops.png"
    _bars(rows, "convert_s", ".2f", "seconds to MLModel (log; parity runs excluded)",
          "Conversion time per model (ours and Apple from PyTorch, onnxsim from our ONNX)", time_png)
    _bars(rows, "ops", "d", "non-const MIL ops after coremltools passes (log)",
          "MIL op count per model", ops_png)
    return [time_png, ops_png]
