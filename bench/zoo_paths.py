"""The three conversion paths the zoo measures; each runs inside its own subprocess.

* :func:`ours` - ``pipeline.convert`` end to end (stage one writes the ONNX file the onnxsim
  path reuses), parity of our executor's run against PyTorch;
* :func:`apple` - coremltools' PyTorch frontend on a ``torch.jit.trace`` (or, when tracing or
  converting the trace fails, on a ``torch.export`` program), its MIL run by our executor
  against PyTorch;
* :func:`onnxsim_path` - ``onnxsim.export_coreml`` on our stage one's ONNX file, its MIL run by
  our executor against onnxruntime.

All three build ML Programs for iOS16 in fp32 and are judged by the same tolerance (stage two's
fp32 row).  Each returns ``{"ok", "stages": {name: seconds}, "convert_s", "ops", "max_abs",
"max_rel", ...}``; an exception propagates (the subprocess wrapper records its first line).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

#: Deployment target and precision of every path, so the op counts compare like with like.
TARGET = "iOS16"


def warm_imports() -> None:
    """Import every heavy module up front, so no path's timings include Python imports.

    First-call costs (the exporter's or a frontend's own warm-up) stay in: a user pays them.
    """
    import coremltools
    import coremltools.converters.mil.frontend.torch  # noqa: F401  (Apple's frontend)
    import onnxruntime  # noqa: F401
    import onnxscript
    import onnxscript.function_libs.torch_lib.ops  # noqa: F401  (the dynamo exporter's op library)
    import onnxsim  # noqa: F401
    import torch.export
    import torch.export._trace  # torch.export's capture, imported on first use
    import torch.onnx
    import torch.onnx._internal.exporter._core  # noqa: F401  (the dynamo exporter)

    import pipeline.api
    import pipeline.executor
    import pipeline.lowering  # noqa: F401


def _tolerance() -> tuple[float, float]:
    from pipeline.lowering.stage import TOLERANCES

    return TOLERANCES["fp32"]


def _leaves(value: Any) -> list[np.ndarray]:
    import torch

    leaves = [value] if isinstance(value, torch.Tensor) else torch.utils._pytree.tree_leaves(value)
    return [t.detach().cpu().numpy() for t in leaves if isinstance(t, torch.Tensor)]


def _parity(actual: list[np.ndarray], expected: list[np.ndarray], reference: str) -> dict[str, Any]:
    """Positional comparison of outputs (the peers name their outputs their own way)."""
    from pipeline.parity import compare

    if len(actual) != len(expected):
        return {"ok": False, "parity_note": f"{len(actual)} outputs, reference has {len(expected)}"}
    atol, rtol = _tolerance()
    names = [f"output_{i}" for i in range(len(expected))]
    report = compare(dict(zip(names, actual)), dict(zip(names, expected)), atol=atol, rtol=rtol,
                     reference=reference, candidate="executor")
    out: dict[str, Any] = {
        "ok": report.ok, "max_abs": report.max_abs,
        "max_rel": max((o.max_rel for o in report.outputs), default=0.0), "reference": reference,
        # The scale of what was compared: an error of 1e-6 on outputs of 1e-15 proves nothing.
        "ref_max": max((float(np.max(np.abs(e))) for e in expected if e.size), default=0.0),
    }
    if not report.ok:
        bad = report.failures()[0]
        out["parity_note"] = bad.note or f"{bad.name}: {bad.mismatches}/{bad.size} mismatches"
    return out


def _run_program(program: Any, arrays: list[np.ndarray], names: list[str] | None = None) -> list[np.ndarray]:
    """Run a MIL program with our executor; feeds by name when they match, else by position."""
    import pipeline

    main = program.functions["main"]
    declared = list(main.inputs)
    if names is not None and sorted(names) == sorted(declared):
        feeds = dict(zip(names, arrays))
    else:
        feeds = dict(zip(declared, arrays))
    result = pipeline.execute(program, feeds)
    return [result[var.name] for var in main.outputs]


def ours(name: str, onnx_path: str, exporter: str | None = None) -> dict[str, Any]:
    """``pipeline.convert`` end to end (``exporter``: stage one's, default dynamo); also saves
    the example feeds next to the ONNX file."""
    import torch
    import zoo_models
    from _measure import mil_op_count

    import pipeline

    warm_imports()
    model, inputs = zoo_models.entry(name).build()
    start = time.perf_counter()
    try:
        extra = {"export_exporter": exporter} if exporter else {}
        result = pipeline.convert(model, inputs, onnx_path=onnx_path, lower_target=TARGET, **extra)
    finally:
        _save_feeds(onnx_path, inputs)
    total = time.perf_counter() - start
    # Parity runs are not conversion: stage one's PyTorch reference run and its onnxruntime
    # comparison ("reference", "parity"), stage two's "verify", and the end-to-end check.
    export_stages = {st["name"]: st["seconds"] for st in result.export.report["stages"]}
    export_parity = sum(export_stages.get(k, 0.0) for k in ("reference", "parity"))
    export_s = sum(export_stages.values()) - export_parity
    timings = result.lowered.report["timings"]
    stage2 = sum(v for k, v in timings.items() if k != "verify")
    stages = {
        "export": export_s, "lower": stage2, "verify_export": export_parity,
        "verify_ort": timings.get("verify", 0.0),
        "verify_torch": max(0.0, total - export_s - export_parity - sum(timings.values())),
    }
    parity = result.parity
    assert parity is not None  # convert always compares against PyTorch
    with torch.no_grad():
        ref = _leaves(model(*inputs))
    return {
        "ref_max": max((float(np.max(np.abs(e))) for e in ref if e.size), default=0.0),
        "ok": parity.ok, "stages": stages, "convert_s": export_s + stage2, "stage2_s": stage2,
        "ops": mil_op_count(result.lowered.program), "max_abs": parity.max_abs,
        "max_rel": max((o.max_rel for o in parity.outputs), default=0.0), "reference": "pytorch",
        "exporter": result.export.exporter_used,
        "export_stages": export_stages,
    }


def _save_feeds(onnx_path: str, inputs: tuple[Any, ...]) -> None:
    path = Path(onnx_path)
    if path.exists():
        arrays = {f"input_{i}": t.detach().cpu().numpy() for i, t in enumerate(inputs)}
        np.savez(path.with_suffix(".npz"), **arrays)


def export_unchecked(name: str, onnx_path: str) -> dict[str, Any]:
    """Stage one without its parity check, for onnxsim when ours rejected the model's ONNX.

    onnxsim then still gets the same ONNX graph ours would have lowered; its own check against
    onnxruntime follows as usual.
    """
    import zoo_models

    import pipeline

    model, inputs = zoo_models.entry(name).build()
    pipeline.export(model, inputs, onnx_path, check_parity=False)
    _save_feeds(onnx_path, inputs)
    return {}


def _ct_kwargs() -> dict[str, Any]:
    import coremltools as ct

    return {"convert_to": "mlprogram", "compute_precision": ct.precision.FLOAT32,
            "minimum_deployment_target": getattr(ct.target, TARGET)}


def apple(name: str) -> dict[str, Any]:
    """coremltools' PyTorch frontend: a trace first, a ``torch.export`` program as fallback."""
    import coremltools as ct
    import torch
    import zoo_models
    from _measure import first_line, mil_op_count

    warm_imports()
    model, inputs = zoo_models.entry(name).build()
    stages: dict[str, float] = {}
    out: dict[str, Any] = {}
    try:
        t0 = time.perf_counter()
        with torch.no_grad():
            traced = torch.jit.trace(model, inputs)
        stages["trace"] = time.perf_counter() - t0
        specs = [ct.TensorType(name=f"input_{i}", shape=tuple(t.shape),
                               dtype=np.int32 if not t.is_floating_point() else np.float32)
                 for i, t in enumerate(inputs)]
        t0 = time.perf_counter()
        mlmodel = ct.convert(traced, inputs=specs, **_ct_kwargs())
        stages["ct_convert"] = time.perf_counter() - t0
        out["frontend"] = "jit.trace"
    except Exception as exc:  # noqa: BLE001  (the documented fallback is torch.export)
        out["trace_error"] = first_line(exc)
        stages = {}
        t0 = time.perf_counter()
        program = torch.export.export(model, inputs).run_decompositions({})
        stages["torch_export"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        mlmodel = ct.convert(program, **_ct_kwargs())
        stages["ct_convert"] = time.perf_counter() - t0
        out["frontend"] = "torch.export"
    convert_s = sum(stages.values())
    program = mlmodel._mil_program
    ops = mil_op_count(program)
    t0 = time.perf_counter()
    with torch.no_grad():
        expected = _leaves(model(*inputs))
    actual = _run_program(program, [t.numpy() for t in inputs])
    stages["verify_torch"] = time.perf_counter() - t0
    out.update(_parity(actual, expected, "pytorch"))
    out.update(stages=stages, convert_s=convert_s, stage2_s=stages["ct_convert"], ops=ops)
    return out


def onnxsim_path(onnx_path: str) -> dict[str, Any]:
    """onnxsim's ``export_coreml`` on our stage one's ONNX file, checked against onnxruntime."""
    import onnx
    import onnxsim
    from _measure import mil_op_count

    from pipeline.lowering.reference import run_onnxruntime

    warm_imports()
    proto = onnx.load(onnx_path)
    with np.load(Path(onnx_path).with_suffix(".npz")) as data:
        arrays = [data[f"input_{i}"] for i in range(len(data.files))]
    t0 = time.perf_counter()
    mlmodel = onnxsim.export_coreml(proto, **_ct_kwargs())
    convert_s = time.perf_counter() - t0
    program = mlmodel._mil_program
    t0 = time.perf_counter()
    onnx_inputs = [i.name for i in proto.graph.input]
    expected_map = run_onnxruntime(proto, dict(zip(onnx_inputs, arrays)))
    expected = [expected_map[o.name] for o in proto.graph.output]
    actual = _run_program(program, arrays, onnx_inputs)
    out = _parity(actual, expected, "onnxruntime")
    out.update(stages={"export_coreml": convert_s, "verify_ort": time.perf_counter() - t0},
               convert_s=convert_s, stage2_s=convert_s, ops=mil_op_count(program))
    return out
