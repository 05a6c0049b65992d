"""Stage two as one call: load and check an ONNX model, lower it, convert, verify, save."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from pipeline.errors import LoweringError, ParityError
from pipeline.lowering import compression as compression_mod
from pipeline.lowering import delivery, model_interface
from pipeline.lowering.context import TargetTooLow
from pipeline.lowering.graph import build_program
from pipeline.lowering.interface import IOAdapter
from pipeline.lowering.load import MAX_DEFAULT_OPSET, load_onnx
from pipeline.parity import ParityReport

log = logging.getLogger(__name__)

#: Deployment targets we build for, as iOS opset numbers; macOS names alias them.
TARGETS = {"iOS13": 13, "macOS10.15": 13, "iOS14": 14, "macOS11": 14, "iOS15": 15, "macOS12": 15, "iOS16": 16, "macOS13": 16, "iOS17": 17, "macOS14": 17, "iOS18": 18, "macOS15": 18}
DEFAULT_TARGET = "iOS16"
#: The neural-network backend exists only up to iOS14 (coremltools refuses it beyond).
NN_MAX_TARGET = 14

#: Parity tolerances per compute precision: fp32 programs should match onnxruntime to float32
#: rounding of reordered sums; fp16 ones to fp16's unit roundoff (2**-11 ~ 4.9e-4) grown over a
#: network's depth.
TOLERANCES = {"fp32": (1e-4, 1e-3), "fp16": (5e-2, 5e-2)}


@dataclasses.dataclass
class LowerResult:
    """What :func:`lower` produces.

    Attributes:
        mlmodel: the coremltools ``MLModel``.
        program: the MIL ``Program`` after coremltools' passes (what the model holds).
        parity: executor-vs-onnxruntime figures (None with ``verify=False``).
        report: a JSON-ready dict of stages, timings, op histograms, node mapping, warnings.
        path: where the model was saved, if it was.
        adapter: the interface adapter between ONNX feeds/outputs and Core ML ones.
    """

    mlmodel: Any
    program: Any
    parity: ParityReport | None
    report: dict[str, Any]
    path: Path | None
    adapter: IOAdapter

    def predict(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the converted model with our executor on ONNX-typed feeds."""
        from pipeline.executor import execute

        out = execute(self.program, self.adapter.adapt_feeds(feeds))
        return self.adapter.restore_outputs(out)


def _target_number(target: str | int) -> int:
    if isinstance(target, int):
        return target
    if target not in TARGETS:
        raise LoweringError(f"lower: unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    return TARGETS[target]


def mil_op_histogram(program: Any) -> Counter[str]:
    counts: Counter[str] = Counter()

    def walk(block: Any) -> None:
        for op in block.operations:
            if op.op_type != "const":
                counts[op.op_type] += 1
            for inner in op.blocks:
                walk(inner)

    for func in program.functions.values():
        walk(func)
    return counts


def random_feeds(adapter: IOAdapter, seed: int = 0) -> dict[str, np.ndarray]:
    """Random ONNX-typed inputs of the declared shapes.

    A flexible axis takes a size other than its minimum where its range allows (so that a
    program that only works at the default size is caught); enumerated inputs take their last
    shape.
    """
    rng = np.random.default_rng(seed)
    feeds = {}
    for sig in adapter.inputs:
        if sig.enumerated:
            shape = tuple(sig.enumerated[-1])
        else:
            shape = tuple(
                min(sig.ranges[a][1], max(sig.ranges[a][0], 2)) if a in sig.ranges
                else (d if isinstance(d, int) else 1)
                for a, d in enumerate(sig.shape)
            )
        dtype = sig.onnx_dtype
        if sig.image is not None:  # whole pixel values, mapped through the preprocessing
            feeds[sig.name] = sig.image.from_pixels(rng.integers(0, 256, size=shape).astype(np.float32))
        elif dtype.kind == "f":
            feeds[sig.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[sig.name] = rng.random(shape) > 0.5
        else:
            feeds[sig.name] = rng.integers(0, 4, size=shape).astype(dtype)
    return feeds


def lower(
    model: onnx.ModelProto | str | os.PathLike[str],
    out_path: str | os.PathLike[str] | None = None,
    *,
    target: str | int | None = None,
    raise_target: bool = True,
    backend: str = "mlprogram",
    precision: str = "fp32",
    verify: bool = True,
    feeds: dict[str, np.ndarray] | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    shapes: dict[str, tuple[int, ...]] | None = None,
    flexible: dict[str, dict[int, tuple[int, int]]] | None = None,
    enumerated: dict[str, list[tuple[int, ...]]] | None = None,
    localize: bool = False,
    interface: Any = None,
    compression: Any = None,
    composites: Sequence[str] | None = None,
    custom_layers: str | Sequence[str] | None = None,
    extensions: Sequence[str | os.PathLike[str]] | str | None = None,
    report_html: str | os.PathLike[str] | None = None,
    keep_intermediates: str | os.PathLike[str] | None = None,
    prechecked: bool = False,
    source_sha256: str | None = None,
    **options: Any,
) -> LowerResult:
    """Lower an ONNX model to Core ML; see :func:`pipeline.lower` for the arguments.

    ``composites`` names ops to lower with their built-in composite instead of the native handler
    (e.g. ``["Max"]``); ``custom_layers`` names ops to turn into Core ML custom layers, or is
    ``"all-unsupported"`` (neural-network backend only); ``extensions`` are Python files to import
    first (user composites, handlers).  ``prechecked``: the model is one stage one has just
    passed through onnx's checker and strict shape inference with data propagation
    (``convert``), so neither runs again; ``source_sha256``: the digest of the ONNX file that
    model was written to (``convert``; else the model is hashed here).
    """
    from pipeline.extensions import load_extensions

    load_extensions(extensions)
    layers = _custom_layer_option(custom_layers, backend)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    proto = load_onnx(model, prechecked=prechecked)
    timings["load_check"] = time.perf_counter() - t0

    if backend == "neuralnetwork":
        number = _target_number(target if target is not None else f"iOS{NN_MAX_TARGET}")
        if number > NN_MAX_TARGET:
            raise LoweringError(
                f"lower: the neuralnetwork backend supports targets up to iOS{NN_MAX_TARGET}/macOS11 "
                f"(asked: {target}); pass --target iOS14, or use the default mlprogram backend"
            )
    else:
        number = _target_number(target if target is not None else DEFAULT_TARGET)
        if number < 15:
            raise LoweringError(
                f"lower: ML Programs need iOS15/macOS12 or newer (asked: {target}); pass "
                "--target iOS15 or newer, or --backend neuralnetwork for older systems"
            )
    # Interface (image, classifier, fp16 I/O, metadata) and compression: pipeline.lowering.delivery.
    number, delivery_warnings = delivery.target_for(number, raise_target, backend, interface, compression)
    options["interface"] = interface
    opts = dict(options, shapes=shapes or {}, flexible=flexible or {}, enumerated=enumerated or {},
                backend=backend, custom_layers=layers, composites=frozenset(composites or ()))
    t0 = time.perf_counter()
    while True:
        try:
            prog, ctx, adapter = build_program(proto, number, options=opts)
            break
        except TargetTooLow as exc:
            if backend == "neuralnetwork":
                raise LoweringError(
                    f"lower: the model {exc.why}, which needs iOS{exc.needed}; the neuralnetwork "
                    f"backend stops at iOS{NN_MAX_TARGET}: use the mlprogram backend"
                ) from None
            if not raise_target:
                raise LoweringError(
                    f"lower: the model {exc.why}, which needs --target iOS{exc.needed} or newer "
                    f"(building for iOS{number}); pass --target iOS{exc.needed}"
                ) from None
            ctx_warning = f"target raised from iOS{number} to iOS{exc.needed}: {exc.why}"
            log.warning(ctx_warning)
            opts.setdefault("_target_warnings", []).append(ctx_warning)
            number = exc.needed
    ctx.warnings[:0] = delivery_warnings + opts.get("_target_warnings", [])
    for onnx_name, cm_name in adapter.renamed().items():
        ctx.warn(
            f"'{onnx_name}' is named '{cm_name}' in the Core ML model (Core ML feature names must "
            "match [A-Za-z][A-Za-z0-9_]*); the mapping is in the model metadata"
        )
    timings["build_mil"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    from pipeline.lowering.cleanup import clean_program

    clean_program(prog)
    mlmodel = _convert(prog, number, backend, precision, model_interface.classifier_config(interface, adapter))
    timings["coreml_passes"] = time.perf_counter() - t0
    compressed = None
    if compression is not None and compression.active:
        t0 = time.perf_counter()
        compressed = compression_mod.compress(mlmodel, compression)
        mlmodel = compressed.mlmodel
        timings["compression"] = time.perf_counter() - t0
    program = getattr(mlmodel, "_mil_program", None) or prog
    _record_metadata(mlmodel, adapter)
    model_interface.apply_metadata(
        mlmodel, interface, adapter, delivery.metadata(model, precision, compression, source_sha256))

    parity = None
    delivered: dict[str, Any] = {}
    if compressed is not None:
        delivered["compression"] = compressed.to_dict()
    if verify or localize:
        feeds = feeds if feeds is not None else random_feeds(adapter)
    if verify:
        t0 = time.perf_counter()
        if compressed is not None:
            assert feeds is not None  # set above whenever verify is on
            parity, delivered["compression"] = delivery.check_compressed(
                proto, program, adapter, feeds, compressed, TOLERANCES[precision][0] if atol is None else atol)
        else:
            parity = _check_parity(proto, program, adapter, feeds, precision, atol, rtol)
        if interface is not None and interface.classifier:
            delivered["classifier"] = delivery.classifier_top1(proto, program, adapter, interface)
        timings["verify"] = time.perf_counter() - t0
    divergence = None
    if localize and feeds is not None:
        t0 = time.perf_counter()
        divergence, delivered["localize"] = _localize(proto, number, opts, feeds, precision, atol, rtol)
        timings["localize"] = time.perf_counter() - t0

    report = {
        "target": f"iOS{number}",
        "backend": backend,
        "precision": precision,
        "timings": timings,
        "onnx_ops": dict(Counter(n.op_type for n in proto.graph.node)),
        "mil_ops": dict(mil_op_histogram(program)),
        "nodes": [dataclasses.asdict(r) for r in ctx.records],
        "warnings": list(ctx.warnings),
        "interface": adapter.to_dict(),
        "parity": parity.to_dict() if parity else None,
        **delivered,
    }
    layer_specs = ctx.options.get("_custom_layer_specs", {})
    if layer_specs:
        report["custom_layers"] = {name: [spec.bindings() for spec in specs] for name, specs in layer_specs.items()}
    result = LowerResult(mlmodel, program, parity, report, None, adapter)
    if parity is not None and not parity.ok:
        _write_inspection(result, backend, report_html, keep_intermediates)
        bad = parity.failures()[0]
        raise ParityError(
            f"lower: output '{bad.name}' differs from onnxruntime: max_abs={bad.max_abs:.3g} "
            f"max_rel={bad.max_rel:.3g} (atol={parity.atol:g}, rtol={parity.rtol:g}); "
            + (divergence.line() if divergence is not None else
               "rerun with --localize to find the first node that diverges, or --no-verify"),
            parity,
        )
    if out_path is not None:
        from pipeline.lowering.save import save_atomically

        result.path = save_atomically(mlmodel, Path(out_path), backend)
        if layer_specs:
            from pipeline.lowering.custom_layers.swift import write_layers

            folder = result.path.with_name(result.path.stem + "_custom_layers")
            files = write_layers(layer_specs, folder)
            report["custom_layer_files"] = [str(f) for f in files]
    _write_inspection(result, backend, report_html, keep_intermediates)
    return result


def _write_inspection(result: LowerResult, backend: str, report_html: Any, keep: Any) -> None:
    """The HTML report, and the "lowered" intermediate for Netron (``04_lowered.*``, MIL text)."""
    if keep is not None:
        from pipeline.lowering.save import save_atomically

        folder = Path(keep)
        suffix = ".mlpackage" if backend == "mlprogram" else ".mlmodel"
        save_atomically(result.mlmodel, folder / f"04_lowered{suffix}", backend)
        (folder / "04_lowered.mil.txt").write_text(str(result.program))
    if report_html is not None:
        from pipeline.inspecting import write_report_html

        write_report_html(result.report, report_html)


def _custom_layer_option(custom_layers: str | Sequence[str] | None, backend: str) -> frozenset[str]:
    """The ``custom_layers`` option as a set of op names (or {"all-unsupported"}), checked."""
    if not custom_layers:
        return frozenset()
    names = [custom_layers] if isinstance(custom_layers, str) else list(custom_layers)
    names = [n.strip() for item in names for n in item.split(",") if n.strip()]
    if backend != "neuralnetwork":
        raise LoweringError(
            f"lower: custom layers ({', '.join(names)}) need --backend neuralnetwork: Core ML supports "
            "custom layers only in neural-network models, not in ML Programs. For an ML Program, "
            "register a composite for the op instead (@register_composite, see README 'Adding an op')"
        )
    return frozenset(names)


def _record_metadata(mlmodel: Any, adapter: IOAdapter) -> None:
    """Record the ONNX interface in the model: renamed features and ONNX dtypes."""
    import json

    from pipeline import __version__

    meta = mlmodel.user_defined_metadata
    meta["pipeline.version"] = __version__
    meta["pipeline.onnx_interface"] = json.dumps(adapter.to_dict(), separators=(",", ":"))
    renamed = adapter.renamed()
    if renamed:
        meta["pipeline.onnx_names"] = json.dumps(renamed, separators=(",", ":"))


def _convert(prog: Any, number: int, backend: str, precision: str, classifier: Any = None) -> Any:
    import coremltools as ct

    if backend not in ("mlprogram", "neuralnetwork"):
        raise LoweringError(f"lower: unknown backend {backend!r}; choose mlprogram or neuralnetwork")
    if precision not in TOLERANCES:
        raise LoweringError(f"lower: unknown precision {precision!r}; choose fp32 or fp16")
    try:
        if backend == "mlprogram":
            from pipeline.lowering.passes import build_mlprogram

            # coremltools' passes validated once, then its MIL backend (pipeline.lowering.passes).
            return build_mlprogram(prog, number, precision, classifier)
        kwargs: dict[str, Any] = {"convert_to": backend, "minimum_deployment_target": getattr(ct.target, f"iOS{number}")}
        if classifier is not None:
            kwargs["classifier_config"] = classifier
        return ct.convert(prog, **kwargs)
    except LoweringError:
        raise
    except Exception as exc:  # coremltools raises plain exceptions from its passes and backends
        raise LoweringError(f"lower: coremltools could not finish the program: {type(exc).__name__}: {exc}") from exc


def _localize(
    proto: onnx.ModelProto, number: int, opts: dict[str, Any], feeds: dict[str, np.ndarray],
    precision: str, atol: float | None, rtol: float | None,
) -> tuple[Any, dict[str, Any]]:
    """Compare every intermediate tensor of a freshly built (unoptimised) program with ORT."""
    from pipeline.lowering.localize import localize

    prog, ctx, adapter = build_program(proto, number, options=dict(opts))
    default_atol, default_rtol = TOLERANCES[precision]
    divergence, compared = localize(
        proto, prog, adapter, ctx.records, feeds,
        atol=default_atol if atol is None else atol, rtol=default_rtol if rtol is None else rtol,
    )
    if divergence is not None:
        log.warning("localize: %s", divergence.line())
    summary = {"compared": compared, "divergence": dataclasses.asdict(divergence) if divergence else None}
    return divergence, summary


def _check_parity(
    proto: onnx.ModelProto,
    program: Any,
    adapter: IOAdapter,
    feeds: dict[str, np.ndarray] | None,
    precision: str,
    atol: float | None,
    rtol: float | None,
) -> ParityReport:
    from pipeline.executor import execute
    from pipeline.lowering.reference import run_onnxruntime
    from pipeline.parity import compare

    feeds = feeds if feeds is not None else random_feeds(adapter)
    expected = run_onnxruntime(proto, feeds)
    actual = adapter.restore_outputs(execute(program, adapter.adapt_feeds(feeds)))
    default_atol, default_rtol = TOLERANCES[precision]
    return compare(
        actual, expected,
        atol=default_atol if atol is None else atol,
        rtol=default_rtol if rtol is None else rtol,
        reference="onnxruntime", candidate="executor",
    )


__all__ = ["MAX_DEFAULT_OPSET", "TARGETS", "LowerResult", "lower"]
