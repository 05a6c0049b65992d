"""``python -m pipeline.lower``: ONNX file -> Core ML model (stage two), verified by parity."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.cli import common, lower_interface
from pipeline.errors import InputSpecError

DESCRIPTION = """\
Lower an ONNX model to a Core ML model with coremltools' MIL builder, one ONNX op at a time,
then prove parity: the converted program runs on our reference executor and onnxruntime runs the
ONNX model on the same inputs (random of the declared shapes, or --inputs-npz); per output max
absolute / relative error and cosine similarity are printed.  A parity failure is an error
unless --no-verify.  The model is written atomically (nothing partial after a failure).
"""

EPILOG = """\
examples:
  python -m pipeline.lower small_cnn.onnx -o small_cnn.mlpackage
  python -m pipeline.lower net.onnx -o net.mlpackage --target iOS17 --precision fp16
  python -m pipeline.lower net.onnx -o net.mlmodel --backend neuralnetwork
  python -m pipeline.lower net.onnx -o net.mlpackage --flexible x:0=1..8 --localize
  python -m pipeline.lower cnn.onnx -o cnn.mlpackage --image-input x --scale 0.00392157 \
      --class-labels labels.txt --author Me --license MIT --version 1.0
  python -m pipeline.lower net.onnx -o net.mlpackage --precision fp16 --quantize int8
  python -m pipeline.lower net.onnx -o net.mlpackage --palettize 4 --blockwise --target iOS18
  python -m pipeline.lower --list-ops

exit codes: 0 ok, 1 parity failure, 2 bad input / unsupported op / lowering error, 3 internal error
"""

_SHAPE = re.compile(r"^([^:]+):(\d+(?:x\d+)*)$")
_FLEX = re.compile(r"^([^:]+):(-?\d+)=(\d+)\.\.(\d+)$")


def build_parser() -> argparse.ArgumentParser:
    """The ``pipeline.lower`` argument parser."""
    p = common.make_parser("python -m pipeline.lower", DESCRIPTION, EPILOG)
    p.add_argument("model", nargs="?", metavar="MODEL.onnx", help="the ONNX model to lower")
    p.add_argument("-o", "--out", metavar="PATH",
                   help="where to save: .mlpackage (ML Program) or .mlmodel (neural network); "
                   "default: MODEL with the backend's suffix")
    tgt = p.add_argument_group("target")
    tgt.add_argument("--target", default=None,
                     help="minimum deployment target: iOS15..iOS18 or macOS12..macOS15 (default "
                     "iOS16); the neuralnetwork backend takes iOS13 or iOS14 (default iOS14)")
    tgt.add_argument("--no-raise-target", action="store_true",
                     help="fail instead of raising the target when an op needs a newer one")
    tgt.add_argument("--backend", choices=("mlprogram", "neuralnetwork"), default="mlprogram",
                     help="ML Program (.mlpackage, default) or neural network (.mlmodel)")
    tgt.add_argument("--precision", choices=("fp32", "fp16"), default="fp32",
                     help="ML Program compute precision (default fp32: parity with the ONNX model "
                     "to float32 rounding; fp16 halves size and runs on the Neural Engine)")
    shp = p.add_argument_group("shapes")
    shp.add_argument("--input-shape", action="append", default=[], metavar="NAME:SHAPE",
                     help="fix an input's shape, e.g. x:1x3x224x224 (for symbolic dims)")
    shp.add_argument("--flexible", action="append", default=[], metavar="NAME:AXIS=MIN..MAX",
                     help="let a symbolic input axis range over MIN..MAX (Core ML RangeDim)")
    shp.add_argument("--enumerated", action="append", default=[], metavar="NAME:SHAPE[,SHAPE...]",
                     help="the input takes exactly these shapes (Core ML EnumeratedShapes), e.g. "
                     "x:1x3x224x224,1x3x320x320")
    ver = p.add_argument_group("verification")
    ver.add_argument("--no-verify", action="store_true", help="skip the parity check")
    ver.add_argument("--inputs-npz", metavar="FILE", help="sample inputs: a .npz with one array per input name")
    ver.add_argument("--atol", type=float, help="parity absolute tolerance (default by precision)")
    ver.add_argument("--rtol", type=float, help="parity relative tolerance (default by precision)")
    ver.add_argument("--localize", action="store_true",
                     help="compare every intermediate tensor with onnxruntime (on the program "
                     "before coremltools' passes) and name the first ONNX node whose error "
                     "exceeds tolerance; the parity error message and the report carry it")
    lower_interface.add_arguments(p)
    ext = p.add_argument_group("leftover ops")
    ext.add_argument("--extensions", action="append", default=[], metavar="FILE",
                     help="import a Python file registering composites/handlers first (repeatable)")
    ext.add_argument("--composites", default="", metavar="OP[,OP...]",
                     help="lower these ops with their built-in composite instead of the native "
                     "handler, e.g. Max (b + relu(a - b))")
    ext.add_argument("--custom-layers", default="", metavar="OP[,OP...]|all-unsupported",
                     help="make these ops (or every op without a lowering) Core ML custom layers; "
                     "needs --backend neuralnetwork; writes Swift/Metal sources next to the model")
    out = p.add_argument_group("artifacts")
    out.add_argument("--report", metavar="FILE", help="write a JSON report of the lowering")
    out.add_argument("--report-html", metavar="FILE",
                     help="write the report as one self-contained HTML page (also on a parity failure)")
    out.add_argument("--keep-intermediates", metavar="DIR",
                     help="also write the model as DIR/04_lowered.mlpackage (or .mlmodel) and its MIL "
                     "text, for python -m pipeline.inspect DIR --stage lowered")
    out.add_argument("--list-ops", action="store_true",
                     help="list the ONNX ops that lower natively, as composites, or only as custom layers")
    return p


def parse_shapes(items: Sequence[str]) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for text in items:
        m = _SHAPE.match(text.strip())
        if not m:
            raise InputSpecError(f"--input-shape {text!r}: expected NAME:DIMS like x:1x3x224x224")
        shapes[m.group(1)] = tuple(int(d) for d in m.group(2).split("x"))
    return shapes


def parse_flexible(items: Sequence[str]) -> dict[str, dict[int, tuple[int, int]]]:
    flex: dict[str, dict[int, tuple[int, int]]] = {}
    for text in items:
        m = _FLEX.match(text.strip())
        if not m:
            raise InputSpecError(f"--flexible {text!r}: expected NAME:AXIS=MIN..MAX like x:0=1..8")
        lo, hi = int(m.group(3)), int(m.group(4))
        if lo < 1 or hi < lo:
            raise InputSpecError(f"--flexible {text!r}: need 1 <= MIN <= MAX")
        flex.setdefault(m.group(1), {})[int(m.group(2))] = (lo, hi)
    return flex


def parse_enumerated(items: Sequence[str]) -> dict[str, list[tuple[int, ...]]]:
    enum: dict[str, list[tuple[int, ...]]] = {}
    for text in items:
        name, _, shapes = text.strip().rpartition(":")
        try:
            parsed = [tuple(int(d) for d in s.split("x")) for s in shapes.split(",")]
        except ValueError:
            parsed = []
        if not name or not parsed:
            raise InputSpecError(f"--enumerated {text!r}: expected NAME:SHAPE,SHAPE like x:1x3x8x8,1x3x16x16")
        enum[name] = parsed
    return enum


def list_ops() -> str:
    """The op table: every ONNX default-domain op (and registered custom-domain op), its opsets,
    and how it lowers: ``native``, ``composite`` or ``custom-layer-only`` (no lowering; the
    neural-network backend can still make it a custom layer), ``unsupported`` otherwise."""
    import onnx

    import pipeline.lowering  # noqa: F401  (registers handlers)
    from pipeline.lowering.composites import COMPOSITES
    from pipeline.lowering.registry import HANDLERS

    keys = set(HANDLERS.keys()) | set(COMPOSITES.keys())
    keys |= {("", s.name) for s in onnx.defs.get_all_schemas_with_history() if s.domain in ("", "ai.onnx")}
    lines = [f"{'op':32} {'domain':18} {'since':>8}  kind"]
    for domain, name in sorted(keys):
        versions = HANDLERS.versions(name, domain=domain)
        kinds = sorted({e.kind for e in versions})
        composite_since = [e.since for e in COMPOSITES.versions(name, domain=domain)]
        if composite_since and "composite" not in kinds:
            kinds.append("composite")
        since = ",".join(str(s) for s in sorted({e.since for e in versions} | set(composite_since)))
        kind = "/".join(k.replace("_", "-") for k in kinds) or _without_lowering(domain, name)
        lines.append(f"{name:32} {domain or 'ai.onnx':18} {since or '-':>8}  {kind}")
    return "\n".join(lines)


def _without_lowering(domain: str, name: str) -> str:
    """``custom-layer-only`` when a custom layer can carry the op, else ``unsupported``."""
    import onnx

    try:
        schema = onnx.defs.get_schema(name, domain)
    except onnx.defs.SchemaError:
        return "custom-layer-only"
    graph_attr = any(a.type in (onnx.defs.OpSchema.AttrType.GRAPH, onnx.defs.OpSchema.AttrType.GRAPHS)
                     for a in schema.attributes.values())
    allowed = {c.type_param_str: list(c.allowed_type_strs) for c in schema.type_constraints}
    non_tensor = any(
        not any(t.startswith("tensor(") and t != "tensor(string)" for t in allowed.get(p.type_str, [p.type_str]))
        for p in (*schema.inputs[:1], *schema.outputs)
    )
    return "unsupported" if graph_attr or non_tensor or not schema.inputs else "custom-layer-only"


def _load_npz(path: str) -> dict[str, Any]:
    import numpy as np

    try:
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one bad-input line
        raise InputSpecError(f"--inputs-npz {path}: cannot read ({type(exc).__name__}: {exc})") from None


def _body(args: argparse.Namespace) -> int:
    if args.list_ops:
        sys.stdout.write(list_ops() + "\n")
        return 0
    if not args.model:
        raise InputSpecError("no MODEL.onnx given; e.g. python -m pipeline.lower model.onnx -o model.mlpackage")
    from pipeline.lowering import lower

    suffix = ".mlpackage" if args.backend == "mlprogram" else ".mlmodel"
    out = Path(args.out) if args.out else Path(args.model).with_suffix(suffix)
    feeds = _load_npz(args.inputs_npz) if args.inputs_npz else None
    result = lower(
        args.model, out, target=args.target, raise_target=not args.no_raise_target,
        backend=args.backend, precision=args.precision, verify=not args.no_verify, feeds=feeds,
        atol=args.atol, rtol=args.rtol, shapes=parse_shapes(args.input_shape),
        flexible=parse_flexible(args.flexible), enumerated=parse_enumerated(args.enumerated),
        localize=args.localize, report_html=args.report_html,
        extensions=args.extensions, composites=[c for c in args.composites.split(",") if c],
        custom_layers=args.custom_layers or None,
        keep_intermediates=args.keep_intermediates,
        interface=lower_interface.interface_options(args),
        compression=lower_interface.compression_options(args),
    )
    if args.report:
        Path(args.report).write_text(json.dumps(result.report, indent=2, default=str))
    if not args.quiet:
        n_mil = sum(result.report["mil_ops"].values())
        sys.stdout.write(
            f"wrote {result.path} ({result.report['backend']}, {result.report['target']}, "
            f"{len(result.report['nodes'])} ONNX nodes -> {n_mil} MIL ops)\n"
        )
        for warning in result.report["warnings"]:
            sys.stdout.write(f"warning: {warning}\n")
        if result.parity is not None:
            sys.stdout.write(result.parity.summary() + "\n")
        located = result.report.get("localize")
        if located is not None:
            div = located["divergence"]
            sys.stdout.write(
                f"localize: {located['compared']} intermediate tensors within tolerance\n" if div is None
                else f"localize: first divergence at node '{div['node']}' ({div['op_type']}), output "
                f"'{div['output']}': max_abs={div['max_abs']:.3g}\n"
            )
        for key in ("compression", "classifier"):
            if key in result.report:
                sys.stdout.write(f"{key}: {json.dumps(result.report[key])}\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the lower command; returns the process exit code."""
    args = common.parse(build_parser(), argv)
    return common.run(_body, args)
