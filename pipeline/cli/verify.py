"""``python -m pipeline.verify``: run a Core ML ML Program and a reference on the same inputs.

The ML Program runs on our reference MIL executor (and, on macOS with Core ML, also through
``MLModel.predict``); the reference is an ONNX file (onnxruntime CPU) or a PyTorch
``module:factory``.  Per output: max absolute and relative error, cosine similarity and the
count of mismatching elements (``pipeline.parity.compare``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.cli import common
from pipeline.errors import InputSpecError, ModelLoadError
from pipeline.parity import ParityReport, compare

log = logging.getLogger(__name__)

DESCRIPTION = """\
Check a Core ML ML Program against a reference: both run on the same inputs (random of the
declared shapes, seeded, or --inputs-npz) and every output is compared.  The ML Program runs on
the project's reference MIL executor; on macOS with Core ML it also runs through Core ML itself.
"""

EPILOG = """\
examples:
  python -m pipeline.verify net.mlpackage --reference net.onnx
  python -m pipeline.verify net.mlpackage --reference models.small_cnn:build --atol 1e-3
  python -m pipeline.verify net.mlpackage --reference net.onnx --inputs-npz feeds.npz

exit codes: 0 within tolerance, 1 mismatch, 2 bad input (missing file, corrupt package, wrong
input names or shapes, unsupported op), 3 internal error
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``pipeline.verify`` argument parser."""
    parser = common.make_parser("python -m pipeline.verify", DESCRIPTION, EPILOG)
    parser.add_argument("model", help="the saved ML Program (.mlpackage)")
    parser.add_argument("--reference", required=True,
                        help="MODEL.onnx, or a PyTorch factory module:callable")
    parser.add_argument("--inputs-npz", help="inputs by name (default: random, seeded)")
    parser.add_argument("--atol", type=float, default=1e-4, help="absolute tolerance (1e-4)")
    parser.add_argument("--rtol", type=float, default=1e-3, help="relative tolerance (1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    return parser


# -- inputs ---------------------------------------------------------------------------------
def _load_npz(path: str) -> dict[str, np.ndarray]:
    if not Path(path).is_file():
        raise InputSpecError(f"--inputs-npz {path}: file does not exist")
    try:
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    except Exception as exc:  # noqa: BLE001 - numpy raises many kinds on a bad file
        raise InputSpecError(
            f"--inputs-npz {path}: cannot read ({type(exc).__name__}: {exc})"
        ) from None


def random_inputs(loaded: Any, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random arrays of the declared input shapes (symbolic dims: the spec default or 1)."""
    from pipeline.executor.execute import input_signature

    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for name, (declared, dtype) in input_signature(loaded.program.functions["main"]).items():
        constraint = loaded.constraints.get(name)
        default = constraint.default if constraint is not None else ()
        shape = tuple(
            int(d) if isinstance(d, (int, np.integer))
            else (default[i] if i < len(default) else 1)
            for i, d in enumerate(declared)
        )
        if dtype.kind == "f":
            feeds[name] = rng.standard_normal(shape).astype(np.float32)
        elif dtype.kind == "b":
            feeds[name] = rng.random(shape) < 0.5
        else:
            feeds[name] = rng.integers(0, 10, size=shape).astype(dtype)
    return feeds


# -- references -----------------------------------------------------------------------------
def run_onnx(path: str, feeds: dict[str, np.ndarray], order: list[str]) -> list[np.ndarray]:
    """Outputs of an ONNX model under onnxruntime CPU; inputs matched by name, else by order."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ModelLoadError(f"--reference {path}: onnxruntime cannot load it ({exc})") from None
    ort_inputs = session.get_inputs()
    names = [i.name for i in ort_inputs]
    if len(names) != len(order):
        raise InputSpecError(
            f"--reference {path} takes {len(names)} inputs {names}; the ML Program takes "
            f"{len(order)} {order}"
        )
    # Same names (as stage two keeps them): match by name; otherwise by position.
    sources = names if set(names) == set(order) else order
    ort_feeds = {}
    for ort_in, mil_name in zip(ort_inputs, sources):
        arr = feeds[mil_name]
        ort_feeds[ort_in.name] = arr.astype(_ort_dtype(ort_in.type, arr.dtype))
    return [np.asarray(v) for v in session.run(None, ort_feeds)]


def _ort_dtype(ort_type: str, fallback: np.dtype) -> np.dtype:
    table = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
             "tensor(double)": np.float64, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
             "tensor(bool)": np.bool_, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8}
    return np.dtype(table.get(ort_type, fallback))


def run_torch(spec: str, feeds: dict[str, np.ndarray], order: list[str]) -> list[np.ndarray]:
    """Outputs of a PyTorch factory's module on the ML Program's inputs, passed by position."""
    import torch

    from pipeline.exporting.sources import load as load_source

    module = load_source(spec).callable_module()
    args = [torch.from_numpy(np.ascontiguousarray(feeds[name])) for name in order]
    args = [a.float() if a.dtype == torch.float16 else a for a in args]
    try:
        with torch.no_grad():
            result = module(*args)
    except Exception as exc:  # noqa: BLE001 - user model code may raise anything
        raise InputSpecError(
            f"--reference {spec}: the module failed on the ML Program's inputs "
            f"({type(exc).__name__}: {exc}); check that its forward takes {order} in that order"
        ) from None
    return [t.detach().cpu().numpy() for t in _flatten(result)]


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flatten(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flatten(v)]
    return [value]


def _name_outputs(values: list[np.ndarray], names: list[str], where: str) -> dict[str, np.ndarray]:
    if len(values) != len(names):
        raise InputSpecError(
            f"{where} returns {len(values)} outputs; the ML Program returns {len(names)} {names}"
        )
    return dict(zip(names, values))


def _coreml_predict(path: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """Core ML's own outputs on macOS (None elsewhere or when Core ML cannot run it)."""
    if sys.platform != "darwin":
        return None
    import coremltools as ct

    try:
        model = ct.models.MLModel(path)
        return {k: np.asarray(v) for k, v in model.predict(feeds).items()}
    except Exception as exc:  # noqa: BLE001 - Core ML failures are reported, not fatal
        log.warning("Core ML predict failed: %s", exc)
        return None


# -- command --------------------------------------------------------------------------------
def verify(args: argparse.Namespace) -> list[ParityReport]:
    """Run the model and the reference; one report per candidate (executor, Core ML)."""
    from pipeline.executor import execute
    from pipeline.executor.loader import load

    if not Path(args.model).exists():
        raise ModelLoadError(f"model {args.model}: file does not exist")
    loaded = load(args.model)
    func = loaded.program.functions["main"]
    order = [n for n in func.inputs if n in _tensor_inputs(func)]
    feeds = _load_npz(args.inputs_npz) if args.inputs_npz else random_inputs(loaded, args.seed)
    ours = execute(loaded, feeds)
    names = list(ours)
    reference = args.reference
    if reference.lower().endswith(".onnx"):
        if not Path(reference).is_file():
            raise ModelLoadError(f"--reference {reference}: file does not exist")
        expected = _name_outputs(run_onnx(reference, feeds, order), names, reference)
    else:
        expected = _name_outputs(run_torch(reference, feeds, order), names, reference)
    reports = [compare(ours, expected, atol=args.atol, rtol=args.rtol,
                       reference=reference, candidate="executor")]
    coreml = _coreml_predict(args.model, feeds)
    if coreml is not None:
        reports.append(compare(coreml, expected, atol=args.atol, rtol=args.rtol,
                               reference=reference, candidate="Core ML"))
    return reports


def _tensor_inputs(func: Any) -> set[str]:
    from pipeline.executor.execute import input_signature

    return set(input_signature(func))


def _body(args: argparse.Namespace) -> int:
    reports = verify(args)
    if not args.quiet:
        for report in reports:
            sys.stdout.write(report.summary() + "\n")
    return 0 if all(r.ok for r in reports) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the verify command; returns the process exit code."""
    args = common.parse(build_parser(), argv)
    if isinstance(args, int):  # --help or a usage error, already reported
        return args
    return common.run(_body, args)
