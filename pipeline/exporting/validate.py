"""Validation of an exported model: ``onnx.checker`` (full check), strict shape inference, and
onnxruntime parity against PyTorch per output (max abs / rel error, ``pipeline.parity`` rule
``|ort - torch| <= atol + rtol * |torch|``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
import torch

from pipeline.errors import ParityError, ValidationError
from pipeline.parity import ParityReport, compare

log = logging.getLogger(__name__)

#: Default parity tolerance of stage one.  float32 kernels of onnxruntime and PyTorch sum in
#: different orders; over a deep network (resnet50 with random weights: max_abs 4.3e-5 on logits
#: of magnitude ~1) that exceeds 1e-5, so the default is the same as stage two's fp32 one.  The
#: sample models meet 1e-5 (tests/parity), and --atol/--rtol tighten it.
DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-3


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]


def check(model: onnx.ModelProto, stage: str) -> onnx.ModelProto:
    """Run ``onnx.checker.check_model(full_check=True)`` and strict shape inference.

    Returns:
        the model with inferred ``value_info`` (shapes Netron can show).

    Raises:
        ValidationError: naming the stage whose model was rejected.
    """
    return check_serialized(model, stage)[0]


def _infer_bytes(data: bytes, strict: bool) -> bytes:
    """Strict, type-checking shape inference with data propagation, bytes to bytes.

    onnx's Python ``infer_shapes`` returns a ModelProto; its C++ entry returns the serialized
    model, which is what is written to disk and handed to onnxruntime (saving a serialization of
    the weights, the slowest step of a large model's checks).
    """
    from onnx import onnx_cpp2py_export

    infer = getattr(getattr(onnx_cpp2py_export, "shape_inference", None), "infer_shapes", None)
    if infer is None:  # another onnx layout: the public route
        return onnx.shape_inference.infer_shapes(
            data, check_type=True, strict_mode=strict, data_prop=True).SerializeToString()
    return infer(data, True, strict, True)


def check_serialized(model: onnx.ModelProto, stage: str) -> tuple[onnx.ModelProto, bytes]:
    """:func:`check`, also returning the checked model serialized (for onnxruntime, the file).

    The model is serialized once: the checker reads those bytes, then one strict, type-checking
    shape inference (with data propagation, so stage two needs no second one) both completes
    ``check_model(full_check=True)`` (which runs exactly that inference and discards it) and
    yields the ``value_info`` returned; the bytes returned are the inferred model's.

    Raises:
        ValidationError: naming the stage whose model was rejected.
    """
    standard = {"", "ai.onnx", "ai.onnx.ml"}
    custom = any(n.domain not in standard for n in model.graph.node)
    data = model.SerializeToString()
    try:
        onnx.checker.check_model(data)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ValidationError(
            f"validate: onnx.checker rejected the {stage} model: {_first_line(exc)}; keep the "
            "graphs with --keep-intermediates to inspect it"
        ) from exc
    try:
        inferred = _infer_bytes(data, strict=not custom)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as exc:
        raise ValidationError(
            f"validate: shape inference failed on the {stage} model: {_first_line(exc)}"
        ) from exc
    return onnx.load_from_string(inferred), inferred


def flatten_outputs(value: Any) -> list[np.ndarray]:
    """The tensors of a (possibly nested) model output, in the exporters' flattening order."""
    leaves = torch.utils._pytree.tree_leaves(value)
    return [t.detach().cpu().numpy() for t in leaves if isinstance(t, torch.Tensor)]


def torch_outputs(module: Any, args: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """Run the PyTorch model once (no_grad, eval mode) and flatten its outputs."""
    if isinstance(module, torch.nn.Module):
        module.eval()
    with torch.no_grad():
        return flatten_outputs(module(*args))


def ort_session(model: onnx.ModelProto, serialized: bytes | None = None) -> Any:
    """An onnxruntime CPU session (single thread: deterministic, and kind to shared machines).

    ``serialized``: ``model`` already serialized (or the same graph without value_info).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(
            serialized if serialized is not None else model.SerializeToString(), options,
            providers=["CPUExecutionProvider"],
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ValidationError(
            f"validate: onnxruntime cannot load the model: {_first_line(exc)}"
        ) from exc


def run_ort(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray],
            serialized: bytes | None = None) -> dict[str, np.ndarray]:
    """Outputs of ``model`` in onnxruntime, keyed by graph output name."""
    session = ort_session(model, serialized)
    wanted = [i.name for i in session.get_inputs()]
    missing = [n for n in wanted if n not in feeds]
    if missing:
        raise ValidationError(
            f"validate: the model has input(s) {', '.join(missing)} that no example input feeds; "
            f"inputs given: {', '.join(feeds)}"
        )
    try:
        results = session.run(None, {n: np.asarray(feeds[n]) for n in wanted})
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ValidationError(f"validate: onnxruntime failed to run the model: {_first_line(exc)}") from exc
    return {o.name: r for o, r in zip(session.get_outputs(), results, strict=True)}


def expected_by_name(model: onnx.ModelProto, outputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Pair PyTorch's flattened outputs with the graph's output names, in order."""
    names = [o.name for o in model.graph.output]
    if len(names) != len(outputs):
        raise ValidationError(
            f"validate: the ONNX model has {len(names)} output(s) but PyTorch returned "
            f"{len(outputs)} tensor(s); the exporter changed the output structure"
        )
    return dict(zip(names, outputs, strict=True))


def parity(
    model: onnx.ModelProto,
    feeds: Mapping[str, np.ndarray],
    expected: Sequence[np.ndarray],
    *,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    candidate: str = "onnxruntime",
    serialized: bytes | None = None,
) -> ParityReport:
    """Compare onnxruntime's outputs with PyTorch's, per output (``serialized``: see ort_session)."""
    want = expected_by_name(model, expected)
    got = run_ort(model, feeds, serialized)
    report = compare(got, want, atol=atol, rtol=rtol, reference="pytorch", candidate=candidate)
    for row in report.outputs:
        log.debug("%s", row.line())
    return report


def require(report: ParityReport, stage: str) -> None:
    """Raise :class:`ParityError` naming the first failing output of ``report``."""
    bad = report.failures()
    if not bad:
        return
    first = bad[0]
    others = f" (and {len(bad) - 1} more output(s))" if len(bad) > 1 else ""
    detail = first.note or f"max_abs={first.max_abs:.3g} max_rel={first.max_rel:.3g}"
    raise ParityError(
        f"parity: output {first.name!r} of the {stage} model differs from PyTorch{others}: {detail} "
        f"(atol={report.atol:g}, rtol={report.rtol:g}); inspect with --keep-intermediates, try the "
        "other --exporter or --bisect-rewrites",
        report,
    )
