"""``python -m pipeline.export``: PyTorch model -> validated ONNX file (stage one)."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.cli import common
from pipeline.errors import InputSpecError
from pipeline.exporting import exporters, passes
from pipeline.exporting import inputs as inputs_mod
from pipeline.exporting.validate import DEFAULT_ATOL, DEFAULT_RTOL

log = logging.getLogger(__name__)

DESCRIPTION = """\
Export a PyTorch model to ONNX, rewrite and simplify it, check it with onnx.checker and shape
inference, and prove with onnxruntime that it computes what PyTorch computes (per output max
absolute / relative error).  Writes the .onnx atomically; exits non-zero on any failure.

SOURCE is one of:
  module:factory        a callable returning an nn.Module or (module, example_inputs);
                        module may also be a file path: path/to/net.py:build
  torchvision:NAME      a torchvision model with random weights (never downloaded)
  FILE.pt2              a torch.export archive (torch.export.save)
  FILE.pt / .pth / .ts  a TorchScript archive (torch.jit.save)
  FILE.pth --factory module:callable
                        a checkpoint (state dict) loaded into the factory's module with
                        torch.load(weights_only=True): no arbitrary unpickling
"""

EPILOG = """\
examples:
  python -m pipeline.export models.small_cnn:build --out small_cnn.onnx
  python -m pipeline.export torchvision:resnet18 --input x:1x3x224x224:float32 \\
      --dynamic x:0=batch --report resnet18.json --out resnet18.onnx
  python -m pipeline.export weights.pth --factory mynet:build --input x:1x3x64x64 --out net.onnx
  python -m pipeline.export models.face_seg:build --exporter torchscript --opset 17 \\
      --keep-intermediates steps/ --bisect-rewrites --rewrites=-fold_hardswish
  python -m pipeline.export --list-rewrites

exit codes: 0 ok, 1 parity failure, 2 bad input / export / validation error, 3 internal error
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``pipeline.export`` argument parser."""
    p = common.make_parser("python -m pipeline.export", DESCRIPTION, EPILOG)
    p.add_argument("source", nargs="?", metavar="SOURCE", help="the model (see above)")
    src = p.add_argument_group("model and inputs")
    src.add_argument("--factory", metavar="MODULE:CALLABLE",
                     help="build the module for a checkpoint SOURCE, e.g. mynet:build")
    src.add_argument("--input", action="append", default=[], metavar="NAME:SHAPE[:DTYPE]",
                     help="a positional input, in forward() order, e.g. x:1x3x224x224:float32 "
                     "(dtype defaults to float32; repeat per input; overrides a factory's examples)")
    src.add_argument("--dynamic", action="append", default=[], metavar="NAME:AXIS=DIM",
                     help="make an input axis dynamic with ONNX dim_param DIM, e.g. x:0=batch "
                     "(repeat, or x:0=batch,2=height)")
    src.add_argument("--inputs-npz", metavar="FILE",
                     help="real sample inputs for the parity check: a .npz with one array per "
                     "input name (numpy.savez(FILE, x=...))")
    src.add_argument("--output-names", metavar="A,B", help="names of the graph outputs, in order")
    exp = p.add_argument_group("export")
    exp.add_argument("-o", "--out", metavar="FILE",
                     help="the .onnx to write (default: <model name>.onnx here)")
    exp.add_argument("--exporter", choices=exporters.EXPORTERS, default=exporters.DYNAMO,
                     help="dynamo (torch.export, default) or torchscript (legacy tracer); a failed "
                     "dynamo export falls back to torchscript with a warning")
    exp.add_argument("--no-fallback", action="store_true",
                     help="fail instead of falling back to the torchscript exporter")
    exp.add_argument("--opset", type=int, metavar="N",
                     help=f"ONNX opset (default {exporters.DEFAULT_OPSET[exporters.DYNAMO]} for "
                     f"dynamo, {exporters.DEFAULT_OPSET[exporters.TORCHSCRIPT]} for torchscript)")
    exp.add_argument("--symbolics", default="", metavar="NAME[,NAME...]",
                     help="opt-in symbolics to use too, e.g. aten::relu6,aten::hardtanh (emit "
                     "pipeline.custom::HardTanh)")
    exp.add_argument("--extensions", action="append", default=[], metavar="FILE",
                     help="import a Python file registering symbolics/rewrites first (repeatable)")
    rw = p.add_argument_group("rewrites and simplification")
    rw.add_argument("--rewrites", metavar="LIST",
                    help="comma-separated passes: 'a,b' runs only a and b, '-a' runs the defaults "
                    "except a, 'none' runs none (use --rewrites=-a for a leading dash)")
    rw.add_argument("--list-rewrites", action="store_true", help="list the rewrite passes and exit")
    rw.add_argument("--no-simplify", action="store_true", help="skip onnxsim simplification")
    val = p.add_argument_group("validation")
    val.add_argument("--atol", type=float, default=DEFAULT_ATOL,
                     help=f"parity absolute tolerance (default {DEFAULT_ATOL:g})")
    val.add_argument("--rtol", type=float, default=DEFAULT_RTOL,
                     help=f"parity relative tolerance (default {DEFAULT_RTOL:g}); an element fails "
                     "when |ort - torch| > atol + rtol * |torch|")
    val.add_argument("--bisect-rewrites", action="store_true",
                     help="check parity after every rewrite pass and name the first that breaks it")
    out = p.add_argument_group("artifacts")
    out.add_argument("--keep-intermediates", metavar="DIR",
                     help="write the exported, per-pass, rewritten and simplified graphs as numbered "
                     ".onnx files for Netron (nodes carry file:line of their PyTorch source)")
    out.add_argument("--report", metavar="FILE",
                     help="write a JSON report: stages and wall times, node counts and op "
                     "histograms, exporter used, symbolics and rewrites applied, parity figures")
    out.add_argument("--report-html", metavar="FILE",
                     help="write the same report as one self-contained HTML page (plots inline)")
    return p


def parse_rewrites(text: str | None) -> tuple[bool, list[str] | None, list[str]]:
    """``--rewrites`` value -> (run any, select or None for defaults, disable)."""
    if text is None or text.strip() in ("", "default"):
        return True, None, []
    items = [t.strip() for t in text.split(",") if t.strip()]
    if items == ["none"]:
        return False, None, []
    select = [t for t in items if not t.startswith("-")]
    disable = [t[1:] for t in items if t.startswith("-")]
    if select and disable:
        raise InputSpecError(
            f"--rewrites {text!r}: either name passes to run or '-name' passes to skip, not both"
        )
    return True, (select or None), disable


def default_out(source: str) -> Path:
    """``<model name>.onnx`` in the working directory."""
    if source.startswith("torchvision:"):
        stem = source.split(":", 1)[1]
    elif ":" in source and not Path(source).exists():
        module, _, attr = source.rpartition(":")
        stem = Path(module).stem.split(".")[-1] if attr in ("build", "main", "model") else attr
    else:
        stem = Path(source).stem
    return Path(re.sub(r"[^A-Za-z0-9_.-]", "_", stem) + ".onnx")


def _list_rewrites() -> int:
    rows = passes.list_passes()
    if not rows:
        sys.stdout.write("no rewrite passes are registered\n")
    for name, description, default in rows:
        sys.stdout.write(f"{name:32s} {'on ' if default else 'off'}  {description}\n")
    return 0


def _body(args: argparse.Namespace) -> int:
    from pipeline.api import EXPORT_STAGES, export
    from pipeline.exporting import sources
    from pipeline.extensions import load_extensions
    from pipeline.logs import stage_progress

    load_extensions(args.extensions)  # before the model loads: it may use the file's torch ops
    if args.list_rewrites:
        return _list_rewrites()
    if not args.source:
        raise InputSpecError("no SOURCE given; e.g. python -m pipeline.export models.small_cnn:build")
    specs = [inputs_mod.parse_input(t) for t in args.input]
    dynamic = inputs_mod.parse_dynamic(args.dynamic)
    run_rewrites, select, disable = parse_rewrites(args.rewrites)
    loaded = sources.load(args.source, factory=args.factory)
    names: list[str] | None = None
    npz_names: list[str] | None = None
    if specs:
        examples = inputs_mod.make_examples(specs)
        names = [s.name for s in specs]
    elif loaded.example_inputs is not None:
        examples = loaded.example_inputs
    elif args.inputs_npz:
        arrays = inputs_mod.load_npz(args.inputs_npz, None)
        names = list(arrays)
        examples = inputs_mod.tensors_from_npz(arrays, names)
    else:
        raise InputSpecError(
            f"model source {args.source!r} comes without example inputs; give one --input "
            "NAME:SHAPE[:DTYPE] per forward() argument, e.g. --input x:1x3x224x224:float32"
        )
    if names is None:
        from pipeline.api import _default_names

        names = _default_names(loaded.module, len(examples))
    npz_names = names
    parity_inputs = inputs_mod.load_npz(args.inputs_npz, npz_names) if args.inputs_npz else None
    out = Path(args.out) if args.out else default_out(args.source)
    with stage_progress(EXPORT_STAGES, enabled=common.show_progress(args), title="export") as step:
        result = export(
            loaded.module, examples, out, exporter=args.exporter, opset=args.opset,
            fallback=not args.no_fallback, input_names=names,
            output_names=args.output_names.split(",") if args.output_names else None,
            dynamic=dynamic, rewrites=run_rewrites, select_rewrites=select,
            disable_rewrites=disable, simplify=not args.no_simplify, atol=args.atol,
            rtol=args.rtol, parity_inputs=parity_inputs, bisect_rewrites=args.bisect_rewrites,
            keep_intermediates=args.keep_intermediates, report_path=args.report,
            report_html=args.report_html,
            source=args.source, progress=step,
            symbolics=[n for n in args.symbolics.split(",") if n], extensions=args.extensions,
        )
    if not args.quiet:
        nodes = len(result.onnx_model.graph.node)
        via = result.exporter_used + (" (fallback)" if result.fallback_reason else "")
        sys.stdout.write(f"wrote {result.path} ({via} exporter, opset {result.opset}, {nodes} nodes)\n")
        if result.parity is not None:
            sys.stdout.write(result.parity.summary() + "\n")
        if args.report:
            sys.stdout.write(f"report: {args.report}\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the export command; returns the process exit code."""
    parsed = common.parse(build_parser(), argv)
    if isinstance(parsed, int):
        return parsed
    return common.run(_body, parsed)
