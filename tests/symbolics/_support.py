"""Shared helpers of the symbolic tests: export with either exporter, run onnxruntime, compare.

Tolerances per dtype live in :data:`TOLERANCE` only.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import onnx
import onnxruntime as ort
import torch

import symbolics

#: (atol, rtol) per output dtype for onnxruntime vs PyTorch.
TOLERANCE: dict[np.dtype, tuple[float, float]] = {
    np.dtype(np.float32): (1e-4, 1e-4),
    np.dtype(np.float64): (1e-10, 1e-10),
    np.dtype(np.int64): (0.0, 0.0),
    np.dtype(np.int32): (0.0, 0.0),
    np.dtype(np.bool_): (0.0, 0.0),
}


class Wrap(torch.nn.Module):
    """A module around a function of tensors."""

    def __init__(self, fn: object) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: torch.Tensor) -> object:
        return self.fn(*args)  # type: ignore[operator]


def export_dynamo(
    fn: object, args: Sequence[torch.Tensor], *, opset: int = 18, table: bool = True,
    include: Iterable[str] | None = None,
) -> onnx.ModelProto:
    """Export with ``dynamo=True`` (with our translation table unless ``table=False``)."""
    custom = symbolics.translation_table(opset, include=include) if table else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            program = torch.onnx.export(
                Wrap(fn).eval(), tuple(args), dynamo=True, opset_version=opset,
                custom_translation_table=custom, verbose=False,
            )
        finally:
            logging.disable(logging.NOTSET)
    assert program is not None
    return program.model_proto


def export_legacy(
    fn: object, args: Sequence[torch.Tensor], *, opset: int = 18, register: bool = True,
    include: Iterable[str] | None = None,
) -> onnx.ModelProto:
    """Export with the TorchScript exporter (with our legacy symbolics unless ``register=False``)."""
    if register:
        symbolics.register_legacy(opset, include=include)
    buf = io.BytesIO()
    custom = {symbolics.CUSTOM_DOMAIN: symbolics.CUSTOM_DOMAIN_VERSION} if include else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Wrap(fn).eval(), tuple(args), buf, dynamo=False, opset_version=opset,
                custom_opsets=custom,
            )
    finally:
        if register:
            symbolics.unregister_legacy()
    return onnx.load_from_string(buf.getvalue())


def run_ort(model: onnx.ModelProto, args: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """Run ``model`` on CPU with the tensors fed to its graph inputs in order."""
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {i.name: a.detach().numpy() for i, a in zip(sess.get_inputs(), args)}
    return sess.run(None, feeds)


def reference(fn: object, args: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """PyTorch outputs as numpy arrays, checked non-degenerate (not all equal, all finite)."""
    with torch.no_grad():
        out = fn(*args)  # type: ignore[operator]
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    arrays = [o.detach().numpy() for o in outs]
    first = arrays[0]
    assert np.isfinite(first).all(), "reference output is not finite"
    if first.size > 1:
        assert np.ptp(first.astype(np.float64)) > 0, "reference output is constant"
    else:
        assert float(first) != 0.0, "reference output is zero"
    return arrays


def assert_parity(
    model: onnx.ModelProto, fn: object, args: Sequence[torch.Tensor],
    outputs: Sequence[int] | None = None,
) -> None:
    """checker(full_check) + onnxruntime vs PyTorch on ``outputs`` (default: all)."""
    onnx.checker.check_model(model, full_check=True)
    expected = reference(fn, args)
    actual = run_ort(model, args)
    picks = range(len(expected)) if outputs is None else outputs
    for i in picks:
        exp, act = expected[i], actual[i]
        assert act.shape == exp.shape, f"output {i}: shape {act.shape} != {exp.shape}"
        atol, rtol = TOLERANCE[np.dtype(exp.dtype)]
        np.testing.assert_allclose(act, exp, atol=atol, rtol=rtol, err_msg=f"output {i}")


def op_types(model: onnx.ModelProto) -> set[str]:
    """``domain::Op`` for non-default domains, ``Op`` otherwise."""
    return {f"{n.domain}::{n.op_type}" if n.domain else n.op_type for n in model.graph.node}


class Case:
    """One model using a covered op: how to build it and which exporters fail without us."""

    def __init__(
        self, id: str, fn: object, args: Sequence[torch.Tensor], *, opset: int = 18,
        fails: Iterable[str] = ("dynamo", "legacy"), outputs: Sequence[int] | None = None,
        include: Iterable[str] | None = None,
    ) -> None:
        self.id, self.fn, self.args, self.opset = id, fn, tuple(args), opset
        self.fails, self.outputs, self.include = tuple(fails), outputs, include

    def export(self, exporter: str, *, ours: bool = True) -> onnx.ModelProto:
        if exporter == "dynamo":
            return export_dynamo(self.fn, self.args, opset=self.opset, table=ours,
                                 include=self.include)
        return export_legacy(self.fn, self.args, opset=self.opset, register=ours,
                             include=self.include)

    def __repr__(self) -> str:
        return self.id


def params(cases: Sequence[Case], *, failing_only: bool = False) -> list[object]:
    """pytest params ``(case, exporter)``: every exporter, or those failing without us."""
    import pytest

    out = []
    for case in cases:
        for exporter in ("dynamo", "legacy"):
            if not failing_only or exporter in case.fails:
                out.append(pytest.param(case, exporter, id=f"{case.id}-{exporter}"))
    return out


def check_fails_without(case: Case, exporter: str) -> None:
    """Without our symbolics the export raises, or onnxruntime cannot run or disagrees."""
    try:
        model = case.export(exporter, ours=False)
    except Exception as exc:  # noqa: BLE001  (any exporter error proves the need)
        logging.getLogger(__name__).debug("%s/%s fails as expected: %s", case.id, exporter, exc)
        return
    try:
        assert_parity(model, case.fn, case.args, outputs=case.outputs)
    except Exception:  # noqa: BLE001  (onnxruntime cannot run it, or computes something else)
        return
    raise AssertionError(f"{case.id} exports and matches with {exporter} without our symbolic")


def check_parity(case: Case, exporter: str) -> onnx.ModelProto:
    """Export with our symbolics and compare onnxruntime with PyTorch."""
    model = case.export(exporter)
    symbolics.attach_functions(model)
    assert_parity(model, case.fn, case.args, outputs=case.outputs)
    return model
