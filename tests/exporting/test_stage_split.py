"""Stage one reports ``check`` and ``parity`` apart; the final model is serialized once for both."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

import pipeline
from pipeline.errors import ValidationError
from pipeline.exporting import validate
from tests.exporting.support import relu_neg_model, tiny, tol


def _stages(report: dict[str, object]) -> dict[str, dict[str, object]]:
    return {s["name"]: s for s in report["stages"]}  # type: ignore[index, union-attr]


def test_check_and_parity_are_separate_stages() -> None:
    module, args = tiny()
    result = pipeline.export(module, args, **tol())
    stages = _stages(result.report)
    assert "validate" not in stages and {"check", "parity"} <= set(stages)
    assert stages["parity"]["ok"] is True and stages["parity"]["skipped"] is False
    assert result.report["parity"]["ok"]
    with torch.no_grad():
        want = [t.numpy() for t in module(*args)]
    got = validate.run_ort(result.onnx_model, {"x": args[0].numpy()})
    for g, w in zip(got.values(), want, strict=True):
        np.testing.assert_allclose(g, w, **tol())


def test_parity_stage_skipped_without_parity() -> None:
    module, args = tiny()
    result = pipeline.export(module, args, check_parity=False)
    stages = _stages(result.report)
    assert stages["parity"]["skipped"] is True and result.parity is None
    assert "check" in stages and "parity" not in result.report


def test_check_serialized_returns_the_checked_bytes() -> None:
    model = relu_neg_model()
    checked, data = validate.check_serialized(model, "test")
    assert onnx.load_from_string(data) == checked
    del checked.graph.value_info[:]
    assert checked == model  # only the inferred value_info was added
    checked = onnx.load_from_string(data)
    assert [v.name for v in checked.graph.value_info] == ["h"]
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    (got,) = validate.run_ort(checked, {"x": x}, serialized=data).values()
    np.testing.assert_array_equal(got, -np.maximum(x, 0))


def test_check_serialized_rejects_type_mismatch_like_full_check() -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(onnx.shape_inference.InferenceError):
        onnx.checker.check_model(model, full_check=True)
    with pytest.raises(ValidationError, match="final"):
        validate.check_serialized(model, "final")
