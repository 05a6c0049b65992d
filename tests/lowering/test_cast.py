"""Lowering of Cast and CastLike against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as TP

from pipeline.errors import UnsupportedOpError
from pipeline.lowering import lower
from pipeline.lowering.reference import run_onnxruntime
from tests.lowering.support import Case, check, make_model, rand

F16 = np.float16
I64 = np.int64
I32 = np.int32

#: Floats with fractions of both signs and zeros (truncation toward zero, x != 0 for bool).
FRACTIONS = np.array([[-2.7, -1.5, -0.5, 0.0], [0.4, 1.5, 2.9, 100.25]], np.float32)
#: Integers outside the int8/uint8/int16 ranges (wrap-around keeps the low bits).
WIDE = np.array([-70000, -300, -129, -128, -1, 0, 127, 128, 255, 256, 300, 70000], I64)

CASES = [
    Case("Cast", [FRACTIONS], {"to": TP.INT64}, opset=13, id="Cast-float-int64-trunc"),
    Case("Cast", [FRACTIONS], {"to": TP.INT32}, opset=6, id="Cast-float-int32-opset6"),
    Case("Cast", [FRACTIONS], {"to": TP.BOOL}, opset=13, id="Cast-float-bool"),
    Case("Cast", [FRACTIONS.astype(F16)], {"to": TP.INT64}, opset=19, id="Cast-fp16-int64-opset19"),
    Case("Cast", [rand(2, 3, dtype=np.bool_)], {"to": TP.FLOAT}, opset=13, id="Cast-bool-float"),
    Case("Cast", [rand(2, 3, dtype=np.bool_)], {"to": TP.INT64}, opset=21, id="Cast-bool-int64"),
    Case("Cast", [rand(2, 3, dtype=I64, low=-9, high=9)], {"to": TP.FLOAT16}, opset=13, id="Cast-int64-fp16"),
    Case("Cast", [rand(2, 3, dtype=I64, low=-9, high=9)], {"to": TP.BOOL}, opset=9, id="Cast-int64-bool"),
    Case("Cast", [rand(2, 3)], {"to": TP.FLOAT16}, opset=13, id="Cast-fp32-fp16"),
    Case("Cast", [rand(2, 3, dtype=F16)], {"to": TP.FLOAT}, opset=21, id="Cast-fp16-fp32"),
    Case("Cast", [rand(2, 3, dtype=np.float64)], {"to": TP.FLOAT}, opset=13, id="Cast-double-float-noop"),
    Case("Cast", [rand(2, 3)], {"to": TP.DOUBLE}, opset=13, id="Cast-float-double"),
    Case("Cast", [rand(2, 3, dtype=I64, low=-99, high=99)], {"to": TP.INT32}, opset=13, id="Cast-int64-int32-noop"),
    Case("Cast", [WIDE], {"to": TP.INT8}, opset=13, id="Cast-int64-int8-wrap"),
    Case("Cast", [WIDE.astype(I32)], {"to": TP.UINT8}, opset=13, id="Cast-int32-uint8-wrap"),
    Case("Cast", [WIDE], {"to": TP.INT16}, opset=19, id="Cast-int64-int16-wrap"),
    Case("Cast", [rand(2, 3, dtype=np.uint8, low=0, high=255)], {"to": TP.FLOAT}, opset=13, id="Cast-uint8-float"),
    Case("Cast", [FRACTIONS], {"to": TP.INT64}, const_inputs=(0,), opset=13, id="Cast-const-fold"),
    Case("CastLike", [FRACTIONS, np.zeros(1, I64)], opset=15, id="CastLike-float-int64"),
    Case("CastLike", [rand(2, 3, dtype=I64, low=-9, high=9), np.zeros(1, F16)], opset=19, id="CastLike-int64-fp16"),
    Case("CastLike", [rand(2, 3, dtype=F16), np.zeros(1, np.float32)], const_inputs=(1,), opset=21,
         id="CastLike-fp16-fp32"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_cast(case: Case) -> None:
    check(case)


def test_cast_to_string_is_unsupported() -> None:
    model, _ = make_model(Case("Cast", [rand(2, 3)], {"to": TP.STRING}, opset=13))
    with pytest.raises(UnsupportedOpError, match="Cast.*STRING"):
        lower(model, verify=False)


@pytest.mark.parametrize("narrow", [TP.INT8, TP.UINT8, TP.INT16, TP.UINT16])
def test_narrowing_wraps_inside_the_program(narrow: int) -> None:
    """int64 -> narrow -> int64: the wrap must happen inside (the output adapter cannot see it)."""
    from onnx import checker, helper

    nodes = [helper.make_node("Cast", ["x"], ["n"], to=narrow), helper.make_node("Cast", ["n"], ["y"], to=TP.INT64)]
    graph = helper.make_graph(
        nodes, "wrap", [helper.make_tensor_value_info("x", TP.INT64, list(WIDE.shape))],
        [helper.make_tensor_value_info("y", TP.INT64, list(WIDE.shape))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 9
    checker.check_model(model, full_check=True)
    expected = run_onnxruntime(model, {"x": WIDE})["y"]
    actual = lower(model, verify=False).predict({"x": WIDE})["y"]
    np.testing.assert_array_equal(actual, expected)


LEAN = [
    (Case("Cast", [rand(2, 3, dtype=I64)], {"to": TP.INT32}, opset=13), {}),
    (Case("Cast", [rand(2, 3, dtype=np.float64)], {"to": TP.FLOAT}, opset=13), {}),
    (Case("Cast", [rand(2, 3)], {"to": TP.INT64}, opset=13), {"cast": 1}),
    (Case("CastLike", [rand(2, 3), np.zeros(1, np.float32)], opset=15), {}),
]


@pytest.mark.parametrize("case,ops", LEAN, ids=lambda v: str(v) if isinstance(v, Case) else "")
def test_cast_lean(case: Case, ops: dict[str, int]) -> None:
    """Casts between ONNX types with one Core ML dtype emit no MIL op (output identity not counted)."""
    model, _ = make_model(case)
    hist = {k: v for k, v in lower(model, verify=False).report["mil_ops"].items() if k != "identity"}
    assert hist == ops



def test_castlike_narrow_target_wraps_inside_the_program() -> None:
    """CastLike to a declared int8 initializer wraps like Cast(to=INT8) (type read from the model)."""
    from onnx import checker, helper, numpy_helper

    nodes = [helper.make_node("CastLike", ["x", "t"], ["n"]), helper.make_node("Cast", ["n"], ["y"], to=TP.INT64)]
    graph = helper.make_graph(
        nodes, "wrap", [helper.make_tensor_value_info("x", TP.INT64, list(WIDE.shape))],
        [helper.make_tensor_value_info("y", TP.INT64, list(WIDE.shape))],
        [numpy_helper.from_array(np.zeros(1, np.int8), "t")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 9
    checker.check_model(model, full_check=True)
    expected = run_onnxruntime(model, {"x": WIDE})["y"]
    actual = lower(model, verify=False).predict({"x": WIDE})["y"]
    np.testing.assert_array_equal(actual, expected)
