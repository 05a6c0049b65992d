"""Model zoo benchmark: ours against coremltools' PyTorch frontend and onnxsim, side by side.

For every model of :data:`zoo_models.ZOO` (random weights, no downloads), four paths, each in
its own subprocess with a time limit (:mod:`zoo_paths`):

1. ours, ``pipeline.convert`` end to end, our executor's output against PyTorch;
2. coremltools' PyTorch frontend (trace, or ``torch.export`` when that fails), our executor's
   run of its MIL against PyTorch;
3. onnxsim's ``export_coreml`` on the ONNX file our stage one wrote, against onnxruntime;
4. ``ours_ts``: path 1 with ``--exporter torchscript`` (the legacy exporter, which like Apple's
   frontend starts from a trace) instead of the default dynamo exporter, for the time figures.

Figures per path: success, first line of a failure, seconds per stage, peak RSS, non-const MIL
ops, max abs/rel error.  Writes ``zoo.md`` (tables and summary), ``zoo.json`` and two PNGs
(``zoo_time.png``, ``zoo_ops.png``) to ``--out``.  Times are wall clock on whatever else the
machine is doing: compare ratios, not absolute seconds.

    python bench/zoo.py                                  # the whole zoo
    python bench/zoo.py --models maximum,small_cnn --out /tmp/zoo
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import _measure
import zoo_models
import zoo_paths
import zoo_report

NOT_MEASURED = {"error": "not measured (--paths)"}


def run_model(name: str, folder: Path, timeout: float, paths: tuple[str, ...],
              in_process: bool = False) -> dict[str, Any]:
    """All paths of one model; the ONNX file of ours is the input of onnxsim's."""

    def isolated(fn: Any, args: tuple[Any, ...], timeout: float) -> dict[str, Any]:
        return _measure.inline(fn, args) if in_process else _measure.isolated(fn, args, timeout)

    item = zoo_models.entry(name)
    row: dict[str, Any] = {"model": name, "family": item.family, "note": item.note}
    onnx_path = str(folder / f"{name}.onnx")
    skipped = dict(NOT_MEASURED)
    row["ours"] = isolated(zoo_paths.ours, (name, onnx_path), timeout) if "ours" in paths else skipped
    row["ours_ts"] = (isolated(zoo_paths.ours, (name, str(folder / f"{name}.ts.onnx"), "torchscript"), timeout)
                      if "ours_ts" in paths else skipped)
    row["apple"] = isolated(zoo_paths.apple, (name,), timeout) if "apple" in paths else skipped
    if "onnxsim" not in paths:
        row["onnxsim"] = skipped
    else:
        note = ""
        if not Path(onnx_path).with_suffix(".npz").exists():
            # Ours failed before writing ONNX (e.g. stage one's parity): onnxsim still gets the
            # graph, exported without that check.
            done = isolated(zoo_paths.export_unchecked, (name, onnx_path), timeout)
            note = "ONNX from stage one without its parity check (ours stopped before writing it)"
            if "error" in done:
                note += f"; that export failed: {done['error']}"
        if Path(onnx_path).with_suffix(".npz").exists():
            row["onnxsim"] = isolated(zoo_paths.onnxsim_path, (onnx_path,), timeout)
        else:
            row["onnxsim"] = {"error": "no ONNX file: stage one cannot export this model"}
        if note:
            row["onnxsim"]["onnx_note"] = note
    return row


def _header(args: argparse.Namespace, seconds: float) -> str:
    import coremltools
    import onnxsim
    import torch

    return (
        f"{len(args.names)} models; run took {seconds / 60:.1f} min on {os.cpu_count()} CPU(s) "
        f"({platform.platform()}), Python {platform.python_version()}, torch {torch.__version__}, "
        f"coremltools {coremltools.__version__}, onnxsim {onnxsim.__version__}; time limit "
        f"{args.timeout:.0f}s per path.  Every path builds an fp32 ML Program for "
        f"{zoo_paths.TARGET}.  Wall-clock times on a shared machine are noisy: compare ratios."
    )


def write_outputs(rows: list[dict[str, Any]], out: Path, header: str, plots: bool) -> None:
    """zoo.json, zoo.md and (unless disabled) the PNG plots."""
    (out / "zoo.json").write_text(json.dumps({"header": header, "rows": rows}, indent=1, default=str))
    (out / "zoo.md").write_text(zoo_report.markdown(rows, header))
    if plots and rows:
        zoo_report.plots(rows, out)


def merge(files: list[Path], out: Path, plots: bool) -> int:
    """Write the report of rows merged from earlier runs, in zoo order."""
    by_name: dict[str, dict[str, Any]] = {}
    headers = []
    for path in files:
        data = json.loads(path.read_text())
        headers.append(f"{path.name}: {data['header']}")
        for row in data["rows"]:
            old = by_name.setdefault(row["model"], row)
            for kind in zoo_report.PATHS:  # a later run's cell wins unless it was not measured
                if kind in row and row[kind].get("error") != NOT_MEASURED["error"]:
                    old[kind] = row[kind]
    order = {e.name: k for k, e in enumerate(zoo_models.ZOO)}
    rows = sorted(by_name.values(), key=lambda r: order.get(r["model"], len(order)))
    header = "Merged from runs:\n\n" + "\n".join(f"- {h}" for h in headers)
    write_outputs(rows, out, header, plots)
    print("\n".join(zoo_report.summary(rows)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", help="comma-separated subset of: "
                        + ", ".join(e.name for e in zoo_models.ZOO))
    parser.add_argument("--paths", default=",".join(zoo_report.PATHS),
                        help="comma-separated subset of ours,ours_ts,apple,onnxsim (default: all)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per path and model")
    parser.add_argument("--out", type=Path, default=HERE / "zoo-out", help="output folder")
    parser.add_argument("--in-process", action="store_true",
                        help="no subprocesses, no time limit (quick checks; peak MB is then shared)")
    parser.add_argument("--merge", type=Path, nargs="+", metavar="JSON",
                        help="measure nothing: merge these zoo.json files (a later file's row "
                        "replaces an earlier one's) and write the report")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    args = parser.parse_args(argv)
    args.names = args.models.split(",") if args.models else [e.name for e in zoo_models.ZOO]
    known = {e.name for e in zoo_models.ZOO}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    paths = tuple(p for p in args.paths.split(",") if p)
    if set(paths) - set(zoo_report.PATHS):
        parser.error(f"--paths takes a subset of {','.join(zoo_report.PATHS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.merge:
        return merge(args.merge, args.out, not args.no_plots)

    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, name in enumerate(args.names, 1):
            t0 = time.perf_counter()
            rows.append(run_model(name, Path(tmp), args.timeout, paths, args.in_process))
            states = ", ".join(f"{p} {zoo_report.status(rows[-1][p])}" for p in zoo_report.PATHS)
            print(f"[{k}/{len(args.names)}] {name}: {states} ({time.perf_counter() - t0:.0f}s)",
                  file=sys.stderr, flush=True)
            # Partial results survive an interrupted run.
            write_outputs(rows, args.out, "(partial run)", plots=False)
    header = _header(args, time.perf_counter() - start)
    write_outputs(rows, args.out, header, plots=not args.no_plots)
    print("\n".join(zoo_report.summary(rows)))
    print(f"wrote {args.out / 'zoo.md'}, zoo.json and plots", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    raise SystemExit(main())
