"""``python -m pipeline.inspect``: open a model or a conversion stage in Netron; render reports."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.cli import common
from pipeline.errors import InputSpecError, ModelLoadError

DESCRIPTION = """\
Open FILE (.onnx, .mlpackage or .mlmodel) in Netron, served on 127.0.0.1 only; the browser opens
unless --no-browser (then only the address is printed).  Ctrl-C stops the server.  With a
conversion's intermediates folder (--keep-intermediates DIR on export/lower), --stage picks the
graph as exported, after the rewrites, after onnxsim, or as lowered to Core ML.

With a JSON report (--report of export or lower), --html OUT writes it as a self-contained HTML
page instead (the page export/lower write with --report-html).
"""

EPILOG = """\
examples:
  python -m pipeline.inspect small_cnn.onnx
  python -m pipeline.inspect steps/ --stage rewritten --port 8080 --no-browser
  python -m pipeline.inspect steps/ --stage lowered
  python -m pipeline.inspect lower-report.json --html lower-report.html

exit codes: 0 ok (also after Ctrl-C), 2 bad input, 3 internal error
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``pipeline.inspect`` argument parser."""
    from pipeline.inspecting.netron import STAGES

    p = common.make_parser("python -m pipeline.inspect", DESCRIPTION, EPILOG)
    p.add_argument("path", metavar="FILE", help="a model file, an intermediates folder, or a JSON report")
    p.add_argument("--stage", choices=tuple(STAGES), help="the stage to open from an intermediates folder")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    p.add_argument("--no-browser", action="store_true", help="only print the address")
    p.add_argument("--html", metavar="OUT", help="render a JSON report (FILE) to this HTML file")
    return p


def _render(args: argparse.Namespace) -> int:
    from pipeline.inspecting import write_report_html

    try:
        report = json.loads(Path(args.path).read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"inspect: cannot read the JSON report {args.path}: {exc}") from None
    if not isinstance(report, dict):
        raise InputSpecError(f"inspect: {args.path} is not a report of export, lower or convert")
    path = write_report_html(report, args.html)
    if not args.quiet:
        sys.stdout.write(f"wrote {path}\n")
    return 0


def _body(args: argparse.Namespace) -> int:
    if args.html:
        return _render(args)
    if Path(args.path).suffix == ".json":
        raise InputSpecError(f"inspect: {args.path} is a JSON report; add --html OUT.html to render it")
    from pipeline.inspecting import netron

    model = netron.resolve(args.path, args.stage)
    url = netron.serve(model, port=args.port, browse=not args.no_browser)
    try:  # Ctrl-C is how this command ends: a clean stop, exit code 0
        sys.stdout.write(f"Netron: {model} at {url} (Ctrl-C stops)\n")
        sys.stdout.flush()
        netron.wait()
    except KeyboardInterrupt:
        netron.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the inspect command; returns the process exit code."""
    parsed = common.parse(build_parser(), argv)
    return common.run(_body, parsed)
