"""Composites: built-in fallbacks (Max, Min), Swish/SwiGLU, and user composites' precedence.

Expected values come from onnxruntime on the same one-node model (tests/lowering/support.py)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from pipeline.errors import UnsupportedOpError
from pipeline.lowering import lower
from pipeline.lowering.composites import COMPOSITES, register_composite
from pipeline.lowering.reference import run_onnxruntime
from tests.lowering.support import Case, make_model, rand, tolerance_for


def _run(case: Case, **options: object) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict]:
    model, feeds = make_model(case)
    expected = run_onnxruntime(model, feeds)
    result = lower(model, target=case.target, verify=False, **options)
    return expected, result.predict(feeds), result.report


def _assert_close(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray]) -> None:
    for name, exp in expected.items():
        atol, rtol = tolerance_for(exp.dtype)
        assert actual[name].dtype == exp.dtype
        np.testing.assert_allclose(actual[name], exp, atol=atol, rtol=rtol)


FALLBACKS = [
    Case("Max", [rand(2, 3, 4), rand(2, 3, 4, seed=1)], id="max-fp32"),
    Case("Max", [rand(2, 3, 4), rand(3, 1, seed=1).reshape(1, 3, 1), rand(4, seed=2)], id="max-3-inputs-broadcast"),
    Case("Max", [rand(2, 8, dtype=np.float16), rand(2, 8, dtype=np.float16, seed=1)], id="max-fp16"),
    Case("Min", [rand(2, 3, 4), rand(2, 3, 4, seed=1)], id="min-fp32"),
    Case("Min", [rand(4, 1), rand(1, 5, seed=1)], opset=8, id="min-broadcast-opset8"),
]


@pytest.mark.parametrize("case", FALLBACKS, ids=str)
def test_fallback_composite_matches_onnxruntime(case: Case) -> None:
    expected, actual, report = _run(case, composites=[case.op])
    _assert_close(expected, actual)
    (record,) = report["nodes"]
    assert record["kind"] == "composite"
    assert "relu" in record["mil_ops"] and "maximum" not in record["mil_ops"]


def test_native_max_is_the_default() -> None:
    case = FALLBACKS[0]
    _, native, report = _run(case)
    _, composite, _ = _run(case, composites=["Max"])
    assert report["nodes"][0]["mil_ops"] == ["maximum"]
    np.testing.assert_allclose(native["out0"], composite["out0"], atol=1e-6, rtol=0)


ACTIVATIONS = [
    Case("Swish", [rand(2, 6)], opset=24, id="swish-alpha1"),
    Case("Swish", [rand(2, 6)], {"alpha": 0.5}, opset=24, id="swish-alpha0.5"),
    Case("Swish", [rand(3, 4, dtype=np.float16)], {"alpha": 1.5}, opset=24, id="swish-fp16"),
]


@pytest.mark.parametrize("case", ACTIVATIONS, ids=str)
def test_activation_composites(case: Case) -> None:
    model, feeds = make_model(case)
    expected = run_onnxruntime(model, feeds)
    result = lower(model, target=case.target, verify=False)
    _assert_close(expected, result.predict(feeds))
    assert result.report["nodes"][0]["kind"] == "composite"


def test_max_composite_refuses_integers() -> None:
    ints = [rand(3, 5, dtype=np.int32, low=-9, high=9), rand(3, 5, dtype=np.int32, low=-9, high=9, seed=1)]
    model, _ = make_model(Case("Max", ints, opset=13))
    with pytest.raises(UnsupportedOpError, match="float inputs"):
        lower(model, verify=False, composites=["Max"])


@pytest.mark.parametrize("alpha", [1.0, 1.702])
def test_swiglu_against_numpy(alpha: float) -> None:
    """onnxruntime 1.32 has no SwiGLU (opset 28): numpy's A * sigmoid(alpha A) * B is the reference."""
    import onnx
    from onnx import TensorProto, helper

    a, b = rand(2, 6), rand(2, 6, seed=1)
    node = helper.make_node("SwiGLU", ["a", "b"], ["y"], alpha=alpha)
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 6]) for n in ("a", "b", "y")]
    model = helper.make_model(helper.make_graph([node], "g", vi[:2], vi[2:]), opset_imports=[helper.make_opsetid("", 28)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    result = lower(model, verify=False)
    expected = a / (1.0 + np.exp(-alpha * a)) * b
    atol, rtol = tolerance_for(np.float32)
    np.testing.assert_allclose(result.predict({"a": a, "b": b})["y"], expected, atol=atol, rtol=rtol)
    assert result.report["nodes"][0]["kind"] == "composite"


def test_user_composite_wins_over_builtin_handler() -> None:
    calls = []

    @register_composite("Relu", since=1)
    def relu_as_max(ctx, node, attrs, inputs):  # type: ignore[no-untyped-def]
        calls.append(node.name)
        return ctx.mb.maximum(x=inputs[0], y=ctx.scalar_like(inputs[0], 0.0))

    try:
        case = Case("Relu", [rand(2, 5)], opset=14)
        expected, actual, report = _run(case)
    finally:
        COMPOSITES.remove("Relu", user=True)
    _assert_close(expected, actual)
    assert calls and report["nodes"][0]["kind"] == "composite"
    assert report["nodes"][0]["mil_ops"] == ["maximum"]


def test_missing_op_message_points_to_composites_and_custom_layers() -> None:
    case = Case("BitCast", [rand(2, 3)], {"to": onnx.TensorProto.INT32}, opset=26)
    model, _ = make_model(case)
    with pytest.raises(UnsupportedOpError, match=r"--custom-layers BitCast") as info:
        lower(model, verify=False)
    assert "register_composite" in str(info.value)
