"""Orchestration of the pipeline stages (no op logic here).

Stage one, :func:`export`: PyTorch reference run -> export (dynamo, TorchScript fallback) ->
source locations -> rewrites -> onnxsim -> checker + shape inference -> onnxruntime parity ->
atomic write, with a JSON report of every stage.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from pipeline.errors import ExportError, InputSpecError, PipelineError, RewriteError
from pipeline.exporting import atomic, exporters, passes, source_info, validate
from pipeline.exporting import inputs as inputs_mod
from pipeline.exporting.report import Recorder
from pipeline.exporting.result import ExportResult
from pipeline.exporting.simplify import simplify as run_simplify
from pipeline.parity import ParityReport

log = logging.getLogger(__name__)

#: The stages :func:`export` reports to its ``progress`` callback, in order.
#: ``check`` (checker, shape inference) and ``parity`` (onnxruntime vs PyTorch) were one stage,
#: ``validate``, before; ``reference`` (the PyTorch run) and ``parity`` exist only for the proof.
EXPORT_STAGES = ("reference", "export", "rewrite", "simplify", "check", "parity", "write")


def _as_tuple(example_inputs: Any) -> tuple[torch.Tensor, ...]:
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    if isinstance(example_inputs, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in example_inputs):
        return tuple(example_inputs)
    raise InputSpecError(
        "export: example_inputs must be a tensor or a tuple of tensors, got "
        f"{type(example_inputs).__name__}"
    )


def _default_names(model: Any, count: int) -> list[str]:
    if isinstance(model, torch.export.ExportedProgram):
        names = [s.arg.name for s in model.graph_signature.input_specs
                 if s.kind == torch.export.graph_signature.InputKind.USER_INPUT]
        if len(names) == count:
            return names
    return inputs_mod.forward_names(model, count)


def _runnable(model: Any) -> Any:
    return model.module() if isinstance(model, torch.export.ExportedProgram) else model


def _parity_feeds(parity_inputs: Any, names: Sequence[str], examples: tuple[torch.Tensor, ...],
                  dynamic: Mapping[str, Mapping[int, str]]) -> tuple[torch.Tensor, ...]:
    if parity_inputs is None:
        return examples
    if isinstance(parity_inputs, Mapping):
        missing = [n for n in names if n not in parity_inputs]
        if missing:
            raise InputSpecError(f"export: parity inputs lack {', '.join(missing)}")
        tensors = tuple(torch.as_tensor(np.asarray(parity_inputs[n])) for n in names)
    else:
        tensors = _as_tuple(parity_inputs)
    inputs_mod.check_against(examples, tensors, names, dynamic)
    return tensors


def _fix_dynamic(model: onnx.ModelProto, dynamic: Mapping[str, Mapping[int, str]]) -> None:
    """Check every requested dynamic axis became a ``dim_param`` and carries the requested name."""
    rename: dict[str, str] = {}
    for value in model.graph.input:
        for axis, want in dynamic.get(value.name, {}).items():
            dims = value.type.tensor_type.shape.dim
            if axis >= len(dims):
                continue
            dim = dims[axis]
            if not dim.HasField("dim_param"):
                raise ExportError(
                    f"export: dynamic axis {value.name}:{axis} ({want}) was specialized to "
                    f"{dim.dim_value} by the exporter; use an example size >= 2 on that axis, or "
                    "the model code fixes that size"
                )
            if dim.dim_param != want:
                rename[dim.dim_param] = want
    if not rename:
        return
    for value in list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in rename:
                dim.dim_param = rename[dim.dim_param]


class _Intermediates:
    """Numbered .onnx files for Netron: 00_exported, 01_<k>_<pass>, 02_rewritten, 03_simplified."""

    def __init__(self, directory: str | Path | None) -> None:
        self.dir = Path(directory) if directory is not None else None
        self.paths: list[Path] = []

    def save(self, name: str, model: onnx.ModelProto) -> None:
        if self.dir is None:
            return
        self.paths.append(atomic.save_model(model, self.dir / f"{name}.onnx"))


def export(
    model: Any,
    example_inputs: Any,
    out_path: str | Path | None = None,
    *,
    exporter: str = exporters.DYNAMO,
    opset: int | None = None,
    fallback: bool = True,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic: Mapping[str, Mapping[int, str]] | None = None,
    rewrites: bool = True,
    select_rewrites: Sequence[str] | None = None,
    disable_rewrites: Sequence[str] = (),
    simplify: bool = True,
    atol: float = validate.DEFAULT_ATOL,
    rtol: float = validate.DEFAULT_RTOL,
    parity_inputs: Any = None,
    check_parity: bool = True,
    bisect_rewrites: bool = False,
    keep_intermediates: str | Path | None = None,
    report_path: str | Path | None = None,
    report_html: str | Path | None = None,
    source: str = "",
    progress: Callable[[str], None] | None = None,
    symbolics: Sequence[str] | None = None,
    extensions: Sequence[str | Path] | str | Path | None = None,
) -> ExportResult:
    """Export a PyTorch model to ONNX and prove the result computes what PyTorch computes.

    Args:
        model: an ``nn.Module`` (eval mode is set), a ``ScriptModule`` or an ``ExportedProgram``.
        example_inputs: a tensor or tuple of tensors, the positional inputs of ``forward``.
        out_path: where to write the .onnx (atomically); None keeps it in memory only.
        exporter: ``"dynamo"`` (default) or ``"torchscript"``.
        opset: default-domain opset; None takes the exporter's default (18 dynamo, 17 TorchScript).
        fallback: when the dynamo exporter fails, retry with TorchScript (with a warning).
        input_names / output_names: graph names; inputs default to ``forward``'s parameter names.
        dynamic: ``{input: {axis: dim_param}}`` dynamic axes.
        rewrites / select_rewrites / disable_rewrites: run the rewrite passes, only these, not these.
        simplify: run onnxsim.
        atol / rtol: parity tolerance (``|ort - torch| <= atol + rtol * |torch|``).
        parity_inputs: inputs for the parity run (tuple of tensors or {name: array}); default the
            example inputs.
        check_parity: run onnxruntime parity (a failure raises).
        bisect_rewrites: check parity after every rewrite pass and name the first that breaks it.
        keep_intermediates: directory for numbered intermediate .onnx files.
        report_path: where to write the JSON report (also written when a stage fails).
        report_html: where to write the same report as a self-contained HTML page (also on failure).
        source: how the model was specified, for the report.
        progress: called with each stage name as it starts.
        symbolics: opt-in symbolics to use too (torch op names, e.g. ``["aten::hardtanh"]``,
            which emits ``pipeline.custom::HardTanh``); custom-domain nodes get their
            standard-op bodies attached as model-local functions so onnxruntime runs them.
        extensions: Python files to import first (user symbolics, rewrites; see README).

    Returns:
        an :class:`ExportResult`.

    Raises:
        PipelineError: ExportError, ValidationError, ParityError, RewriteError, InputSpecError.
    """
    from pipeline.extensions import load_extensions

    load_extensions(extensions)
    rec = Recorder(progress)
    rec.data["source"] = source or type(model).__name__
    try:
        result = _export(
            rec, model, example_inputs, out_path, exporter=exporter, opset=opset,
            fallback=fallback, input_names=input_names, output_names=output_names,
            dynamic=dict(dynamic or {}), rewrites=rewrites, select_rewrites=select_rewrites,
            disable_rewrites=disable_rewrites, simplify=simplify, atol=atol, rtol=rtol,
            parity_inputs=parity_inputs, check_parity=check_parity,
            bisect_rewrites=bisect_rewrites, keep_intermediates=keep_intermediates,
            include=list(symbolics or ()),
        )
    except PipelineError as exc:
        rec.data["error"] = {"type": type(exc).__name__, "message": str(exc)}
        parity = getattr(exc, "parity", None)
        if isinstance(parity, ParityReport):
            rec.data["parity"] = parity.to_dict()
        if report_path is not None:
            atomic.write_json(report_path, rec.data)
        _write_html(report_html, rec.data)
        raise
    if report_path is not None:
        atomic.write_json(report_path, rec.data)
    _write_html(report_html, rec.data)
    return result


def _write_html(path: str | Path | None, report: dict[str, Any]) -> None:
    if path is not None:
        from pipeline.inspecting import write_report_html

        write_report_html(report, path)


def _export(rec: Recorder, model: Any, example_inputs: Any, out_path: str | Path | None, *,
            exporter: str, opset: int | None, fallback: bool, input_names: Sequence[str] | None,
            output_names: Sequence[str] | None, dynamic: dict[str, Mapping[int, str]],
            rewrites: bool, select_rewrites: Sequence[str] | None,
            disable_rewrites: Sequence[str], simplify: bool, atol: float, rtol: float,
            parity_inputs: Any, check_parity: bool, bisect_rewrites: bool,
            keep_intermediates: str | Path | None, include: Sequence[str] = ()) -> ExportResult:
    args = _as_tuple(example_inputs)
    names = list(input_names) if input_names else _default_names(model, len(args))
    if len(names) != len(args):
        raise InputSpecError(f"export: {len(names)} input name(s) for {len(args)} example input(s)")
    inputs_mod.check_dynamic(dynamic, names, args)
    if isinstance(model, torch.nn.Module):
        model.eval()
    keep = _Intermediates(keep_intermediates)
    parity_args = _parity_feeds(parity_inputs, names, args, dynamic)
    feeds = {n: t.detach().cpu().numpy() for n, t in zip(names, parity_args, strict=True)}

    with rec.stage("reference") as st:
        try:
            expected = validate.torch_outputs(_runnable(model), parity_args)
        except Exception as exc:  # the user's forward may raise anything
            raise ExportError(
                f"export: the model raised {type(exc).__name__} on the example inputs: "
                f"{str(exc).splitlines()[0][:300] if str(exc) else ''}; check --input shapes/dtypes"
            ) from exc
        st["outputs"] = len(expected)

    with rec.stage("export") as st:
        outcome = exporters.export_model(
            model, args, exporter=exporter, opset=opset, input_names=names,
            output_names=output_names, dynamic=dynamic, fallback=fallback, include=include,
        )
        onnx_model = outcome.model
        _fix_dynamic(onnx_model, dynamic)
        source_info.ensure_node_names(onnx_model)
        st["located_nodes"] = source_info.annotate(onnx_model)
        st["nodes"] = len(onnx_model.graph.node)
    rec.data["exporter"] = {
        "requested": outcome.requested, "used": outcome.exporter, "opset": outcome.opset,
        "fallback_reason": outcome.fallback_reason, "seconds": round(outcome.seconds, 4),
        "warnings": outcome.warnings,
    }
    rec.data["symbolics"] = {"registered": outcome.symbolics, "used": _symbolics_used(onnx_model)}
    rec.graph("exported", onnx_model)
    keep.save("00_exported", onnx_model)

    def judge(model_: onnx.ModelProto, stage: str) -> ParityReport:
        checked, data = validate.check_serialized(model_, stage)
        return validate.parity(checked, feeds, expected, atol=atol, rtol=rtol, serialized=data)

    if bisect_rewrites:
        with rec.stage("bisect-baseline"):
            base = judge(onnx_model, "exported")
        rec.data["bisect"] = [{"after": "export", "ok": base.ok, "max_abs": base.max_abs}]
        validate.require(base, f"exported ({outcome.exporter})")

    with rec.stage("rewrite") as st:
        counter = [0]
        last = [_signature(onnx_model)]

        def after_each(name: str, current: onnx.ModelProto) -> None:
            counter[0] += 1
            if _signature(current) != last[0]:  # only passes that changed the graph get a file
                keep.save(f"01_{counter[0]:02d}_{name}", current)
                last[0] = _signature(current)
            if not bisect_rewrites:
                return
            try:
                report = judge(current, f"rewritten (after pass {name!r})")
            except PipelineError as exc:
                raise RewriteError(f"rewrites: pass {name!r} broke the model: {exc}") from exc
            rec.data["bisect"].append({"after": name, "ok": report.ok, "max_abs": report.max_abs})
            if not report.ok:
                bad = report.failures()[0]
                raise RewriteError(
                    f"rewrites: pass {name!r} breaks parity on output {bad.name!r} "
                    f"(max_abs={bad.max_abs:.3g}); disable it with --rewrites=-{name}"
                )

        records: list[dict[str, Any]] = []
        watch = after_each if keep.dir is not None or bisect_rewrites else None  # else: no copies
        if rewrites:
            onnx_model, records = passes.run(
                onnx_model, select=select_rewrites, disable=disable_rewrites, after_each=watch,
            )
        source_info.ensure_node_names(onnx_model)
        st["passes"] = len(records)
        st["nodes"] = len(onnx_model.graph.node)
    rec.data["rewrites"] = records
    rec.graph("rewritten", onnx_model)
    keep.save("02_rewritten", onnx_model)

    with rec.stage("simplify") as st:
        st["skipped"] = not simplify
        if simplify:
            onnx_model = run_simplify(onnx_model)
        st["nodes"] = len(onnx_model.graph.node)
    rec.graph("simplified", onnx_model)
    keep.save("03_simplified", onnx_model)

    with rec.stage("check"):
        onnx_model, serialized = validate.check_serialized(onnx_model, "final")
    parity: ParityReport | None = None
    with rec.stage("parity") as st:
        st["skipped"] = not check_parity
        if check_parity:
            parity = validate.parity(
                onnx_model, feeds, expected, atol=atol, rtol=rtol, serialized=serialized,
            )
            rec.data["parity"] = parity.to_dict()
            st["ok"] = parity.ok
            validate.require(parity, f"final ({outcome.exporter} export)")
    rec.graph("final", onnx_model)

    path: Path | None = None
    digest: str | None = None
    with rec.stage("write") as st:
        if out_path is not None:  # the checked bytes: the model is not serialized again
            path = atomic.write_bytes(out_path, serialized)
            digest = hashlib.sha256(serialized).hexdigest()
            st["path"] = str(path)
    del serialized
    rec.data["output"] = str(path) if path else None
    return ExportResult(
        onnx_model=onnx_model, path=path, parity=parity, report=rec.data,
        exporter_used=outcome.exporter, opset=_default_opset(onnx_model),
        fallback_reason=outcome.fallback_reason, input_names=[i.name for i in onnx_model.graph.input],
        output_names=[o.name for o in onnx_model.graph.output], intermediates=keep.paths,
        sha256=digest,
    )


def _signature(model: onnx.ModelProto) -> tuple[Any, ...]:
    """A cheap fingerprint of a graph's structure (ops, wiring, initializer names)."""
    nodes = tuple((n.op_type, tuple(n.input), tuple(n.output)) for n in model.graph.node)
    return nodes, tuple(i.name for i in model.graph.initializer)


def _default_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _symbolics_used(model: onnx.ModelProto) -> list[str]:
    try:
        import symbolics
    except ImportError:
        return []
    fn = getattr(symbolics, "used_in", None)
    return list(fn(model)) if fn is not None else []


# -- stage two and end to end ----------------------------------------------------------------


def lower(onnx_model_or_path: Any, out_path: str | Path | None = None, **options: Any) -> Any:
    """Stage two: lower an ONNX model (proto or path) to Core ML, verified by parity.

    Options are those of :func:`pipeline.lowering.stage.lower` (``target``, ``backend``,
    ``precision``, ``verify``, ``feeds``, ``atol``, ``rtol``, ``shapes``, ``flexible``, ...).

    Returns:
        A :class:`pipeline.lowering.stage.LowerResult`.
    """
    from pipeline.lowering import lower as _lower

    return _lower(onnx_model_or_path, out_path, **options)


@dataclasses.dataclass
class ConvertResult:
    """Both stages' results and the end-to-end parity of the Core ML model against PyTorch."""

    export: ExportResult
    lowered: Any
    parity: ParityReport | None
    path: Path | None

    @property
    def mlmodel(self) -> Any:
        return self.lowered.mlmodel

    @property
    def report(self) -> dict[str, Any]:
        return {
            "export": self.export.report,
            "lower": self.lowered.report,
            "end_to_end_parity": self.parity.to_dict() if self.parity else None,
        }


def convert(model: Any, example_inputs: Any, out_path: str | Path | None = None, **options: Any) -> ConvertResult:
    """PyTorch to Core ML end to end: :func:`export`, then :func:`lower`, then parity vs PyTorch.

    Options prefixed ``export_`` go to :func:`export` (without the prefix), those prefixed
    ``lower_`` to :func:`lower`; ``onnx_path`` keeps the ONNX file (default: next to
    ``out_path`` with the .onnx suffix, or in memory only); ``report_path`` / ``report_html``
    write the combined report (both stages and end-to-end parity) as JSON / HTML.
    """
    from pipeline.extensions import load_extensions
    from pipeline.parity import compare

    # ``extensions``: Python files registering symbolics, composites, handlers (both stages).
    load_extensions(options.pop("extensions", None))

    export_opts = {k[len("export_"):]: v for k, v in options.items() if k.startswith("export_")}
    lower_opts = {k[len("lower_"):]: v for k, v in options.items() if k.startswith("lower_")}
    unknown = [k for k in options if not k.startswith(("export_", "lower_"))
               and k not in ("onnx_path", "report_path", "report_html")]
    if unknown:
        raise PipelineError(f"convert: unknown options {unknown}; prefix them with export_ or lower_")
    onnx_path = options.get("onnx_path")
    if onnx_path is None and out_path is not None:
        onnx_path = Path(out_path).with_suffix(".onnx")
    if export_opts.get("keep_intermediates") is not None:  # one folder holds every stage
        lower_opts.setdefault("keep_intermediates", export_opts["keep_intermediates"])
    exported = export(model, example_inputs, onnx_path, **export_opts)
    examples = _as_tuple(example_inputs)
    feeds = {name: t.detach().cpu().numpy() for name, t in zip(exported.input_names, examples)}
    # Stage one's result has just passed the full checker and strict shape inference.
    lowered = lower(exported.onnx_model, out_path, feeds=feeds, prechecked=True,
                    source_sha256=exported.sha256, **lower_opts)
    with torch.no_grad():
        ref = _runnable(model)(*examples)
    ref_list = [ref] if isinstance(ref, torch.Tensor) else list(torch.utils._pytree.tree_leaves(ref))
    expected = {n: r.detach().cpu().numpy() for n, r in zip(exported.output_names, ref_list)}
    actual = lowered.predict(feeds)
    from pipeline.lowering.stage import TOLERANCES

    atol, rtol = TOLERANCES[lowered.report["precision"]]
    parity = compare(actual, expected, atol=atol, rtol=rtol, reference="pytorch", candidate="coreml-executor")
    result = ConvertResult(exported, lowered, parity, lowered.path)
    if options.get("report_path") is not None:
        atomic.write_json(options["report_path"], result.report)
    _write_html(options.get("report_html"), result.report)
    return result
