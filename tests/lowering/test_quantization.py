"""Lowering of quantization ops, checked against onnxruntime (integer results exactly)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from tests.lowering.support import Case, check, rand

F16 = np.float16
I8, U8, I16, U16 = np.int8, np.uint8, np.int16, np.uint16


def grid(*shape: int, dtype: type = np.float32, seed: int = 0) -> np.ndarray:
    """Random values away from .5 ties of x/scale (the scales below are 0.05, 0.1, 0.25 ...)."""
    return rand(*shape, dtype=dtype, low=-12, high=12, seed=seed)


def ints(*shape: int, dtype: type = U8, seed: int = 0) -> np.ndarray:
    info = np.iinfo(dtype)
    return rand(*shape, dtype=np.int64, low=info.min, high=info.max, seed=seed).astype(dtype)


S = np.array(0.1, np.float32)
S_AX = np.array([0.05, 0.1, 0.25], np.float32)
Z8 = np.array(3, I8)
ZU = np.array(128, U8)

CASES = [
    # QuantizeLinear: per-tensor (opset 10), per-axis (13), saturation, fp16, blocked (21), 16-bit.
    Case("QuantizeLinear", [grid(2, 3), S, ZU], opset=10, const_inputs=(1, 2)),
    Case("QuantizeLinear", [grid(2, 3), S], opset=10, const_inputs=(1,), id="Q-no-zp-uint8"),
    Case("QuantizeLinear", [grid(2, 3, 4) * 10, S, Z8], opset=13, const_inputs=(1, 2), id="Q-int8-saturate"),
    Case("QuantizeLinear", [grid(2, 3, 4), S_AX, np.array([0, 5, -5], I8)], {"axis": 1}, opset=13,
         const_inputs=(1, 2), id="Q-per-axis"),
    Case("QuantizeLinear", [grid(4, 3), S_AX, np.array([1, 2, 3], U8)], {"axis": -1}, opset=19,
         const_inputs=(1, 2), id="Q-per-axis-negative"),
    Case("QuantizeLinear", [grid(2, 3, dtype=F16), S.astype(F16), Z8], opset=19, const_inputs=(1, 2), id="Q-fp16"),
    Case("QuantizeLinear", [grid(2, 3), S, ZU], opset=19, const_inputs=(1, 2), id="Q-run-time-x"),
    Case("QuantizeLinear", [grid(2, 3), S, ZU], opset=13, id="Q-run-time-scale"),
    Case("QuantizeLinear", [grid(2, 3), S, ZU], opset=13, const_inputs=(1, 2), target="iOS15", id="Q-ios15"),
    Case("QuantizeLinear", [grid(2, 6), np.array([[0.1, 0.2, 0.05], [0.5, 0.25, 1.0]], np.float32),
                            np.array([[0, 1, 2], [3, 4, 5]], I8)], {"axis": 1, "block_size": 2}, opset=21,
         const_inputs=(1, 2), id="Q-blocked"),
    Case("QuantizeLinear", [grid(2, 3) * 1000, S, np.array(-7, I16)], opset=21, const_inputs=(1, 2), id="Q-int16"),
    Case("QuantizeLinear", [grid(2, 3) * 1000, S], {"output_dtype": TensorProto.UINT16}, opset=21,
         const_inputs=(1,), id="Q-uint16-output-dtype"),
    Case("QuantizeLinear", [grid(2, 3, 4), S_AX, np.array([0, 5, -5], I8)], {"axis": 1}, opset=13,
         const_inputs=(1, 2), target="iOS17", id="Q-per-axis-native"),
    Case("QuantizeLinear", [grid(2, 3), S, ZU], opset=13, const_inputs=(1, 2), target="iOS17", id="Q-native"),
    Case("QuantizeLinear", [grid(2, 3, dtype=F16), S.astype(F16), Z8], opset=19, const_inputs=(1, 2),
         target="iOS18", id="Q-native-fp16"),
    # DequantizeLinear: run-time and constant x, per-axis, blocked, int32, fp16 scales.
    Case("DequantizeLinear", [ints(2, 3), S, ZU], opset=10, const_inputs=(1, 2)),
    Case("DequantizeLinear", [ints(2, 3, dtype=I8), S], opset=10, const_inputs=(1,), id="DQ-no-zp"),
    Case("DequantizeLinear", [ints(2, 3, 4, dtype=I8), S_AX, np.array([0, 5, -5], I8)], {"axis": 1},
         opset=13, const_inputs=(1, 2), id="DQ-per-axis"),
    Case("DequantizeLinear", [ints(2, 3, 4, dtype=I8), S_AX, np.array([0, 5, -5], I8)], {"axis": 1},
         opset=13, const_inputs=(0, 1, 2), id="DQ-const-weight-folds"),
    Case("DequantizeLinear", [ints(3, 4, dtype=I8), S_AX, np.array([0, 5, -5], I8)], {"axis": -2},
         opset=13, const_inputs=(1, 2), target="iOS17", id="DQ-per-axis-native"),
    Case("DequantizeLinear", [ints(2, 3), S, ZU], opset=13, const_inputs=(1, 2), target="iOS17", id="DQ-native"),
    Case("DequantizeLinear", [ints(2, 3), S, ZU], opset=13, id="DQ-run-time-params"),
    Case("DequantizeLinear", [ints(2, 3, dtype=I8), S.astype(F16), Z8], opset=19, const_inputs=(1, 2), id="DQ-fp16"),
    Case("DequantizeLinear", [ints(2, 3, dtype=I8), S.astype(F16), Z8], opset=19, const_inputs=(1, 2),
         target="iOS17", id="DQ-fp16-native"),
    Case("DequantizeLinear", [ints(2, 6, dtype=I8), np.array([[0.1, 0.2, 0.05], [0.5, 0.25, 1.0]], np.float32),
                              np.array([[0, 1, 2], [3, 4, 5]], I8)], {"axis": 1, "block_size": 2}, opset=21,
         const_inputs=(1, 2), id="DQ-blocked"),
    Case("DequantizeLinear", [ints(2, 3, dtype=I16), S, np.array(-300, I16)], opset=21, const_inputs=(1, 2),
         id="DQ-int16"),
    Case("DequantizeLinear", [ints(2, 3, dtype=U16), S.astype(F16), np.array(300, U16)], opset=21,
         const_inputs=(1, 2), id="DQ-uint16-fp16"),
    Case("DequantizeLinear", [rand(2, 3, dtype=np.int32, low=-100000, high=100000), S], opset=13,
         const_inputs=(1,), id="DQ-int32"),
    Case("DequantizeLinear", [ints(2, 3), S, ZU], {"output_dtype": TensorProto.FLOAT16}, opset=25,
         const_inputs=(1, 2), id="DQ-output-dtype"),
    # DynamicQuantizeLinear: mixed signs, all positive.
    Case("DynamicQuantizeLinear", [grid(3, 4)], opset=11, n_outputs=3),
    Case("DynamicQuantizeLinear", [rand(2, 5, low=0.5, high=3.0)], opset=11, n_outputs=3, id="DynQ-positive"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_quantization(case: Case) -> None:
    check(case)


def qargs(x: np.ndarray, scale: float | np.ndarray, zp: np.ndarray) -> list[np.ndarray]:
    return [x, np.asarray(scale, np.float32), zp]


A_U8 = ints(3, 8, seed=1)
B_U8 = ints(8, 4, seed=2)
A_I8 = ints(2, 3, 8, dtype=I8, seed=3)
B_I8 = ints(8, 5, dtype=I8, seed=4)
X_U8 = ints(1, 3, 6, 6, seed=5)
W_I8 = ints(4, 3, 3, 3, dtype=I8, seed=6)

PRODUCT_CASES = [
    Case("MatMulInteger", [A_U8, B_U8, np.array(100, U8), np.array(120, U8)], opset=10, id="MMI-zero-points"),
    Case("MatMulInteger", [A_I8, B_I8], opset=10, const_inputs=(1,), id="MMI-int8-const-b-batched"),
    Case("MatMulInteger", [A_U8, ints(8, 5, seed=8), np.array(7, U8), np.array([0, 1, 99, 2, 5], U8)], opset=10,
         const_inputs=(1, 2, 3), id="MMI-per-column"),
    Case("QLinearMatMul", qargs(A_U8, 0.05, np.array(120, U8)) + qargs(B_U8, 0.02, np.array(128, U8))
         + [np.array(0.3, np.float32), np.array(110, U8)], opset=10, const_inputs=(1, 2, 3, 4, 5, 6, 7)),
    Case("QLinearMatMul", qargs(A_I8, 0.05, np.array(0, I8)) + qargs(B_I8, 0.02, np.array(3, I8))
         + [np.array(0.2, np.float32), np.array(-5, I8)], opset=10, id="QLMM-int8-run-time"),
    Case("QLinearMatMul", qargs(A_U8, 0.05, np.array(120, U8)) + qargs(ints(8, 5, seed=8), [0.01, 0.02, 0.03, 0.04, 0.05],
         np.full(5, 128, U8)) + [np.array(0.3, np.float32), np.array(110, U8)], opset=21,
         const_inputs=(1, 2, 3, 4, 5, 6, 7), id="QLMM-per-column-opset21"),
    Case("ConvInteger", [ints(1, 3, 6, 6, dtype=I8), W_I8, np.array(-2, I8)], {"pads": [1, 1, 1, 1]}, opset=10,
         const_inputs=(1, 2)),
    Case("ConvInteger", [X_U8, ints(2, 3, 2, 2, seed=7), np.array(100, U8), np.array(50, U8)],
         {"strides": [2, 2]}, opset=10, id="ConvInteger-run-time-weight"),
    Case("QLinearConv", qargs(X_U8, 0.05, np.array(128, U8)) + qargs(ints(4, 3, 3, 3, seed=6), 0.01, np.array(130, U8))
         + [np.array(0.1, np.float32), np.array(120, U8), rand(4, dtype=np.int32, low=-500, high=500)],
         {"pads": [1, 1, 1, 1]}, opset=10, const_inputs=(1, 2, 3, 4, 5, 6, 7, 8)),
    Case("QLinearConv", qargs(ints(1, 4, 5, 5, dtype=I8), 0.05, np.array(-3, I8))
         + qargs(ints(4, 2, 3, 3, dtype=I8, seed=9), np.array([0.01, 0.02, 0.03, 0.015], np.float32),
                 np.zeros(4, I8)) + [np.array(0.07, np.float32), np.array(4, I8)],
         {"group": 2, "auto_pad": "SAME_UPPER"}, opset=10, const_inputs=(1, 2, 3, 4, 5, 6, 7),
         id="QLinearConv-grouped-per-channel"),
]


@pytest.mark.parametrize("case", PRODUCT_CASES, ids=str)
def test_quantized_products(case: Case) -> None:
    check(case)


def test_uint8_by_int8_products_are_exact() -> None:
    # onnxruntime's u8 x s8 kernels (AVX2 vpmaddubsw) saturate int16 pair sums, so for this
    # type mix the reference is exact numpy / float64 torch arithmetic instead.
    import torch

    from pipeline.lowering import lower
    from tests.lowering.support import make_model

    a, b = A_U8.astype(np.int64) - 7, B_I8.astype(np.int64) - np.array([0, 1, -1, 2, 5])
    case = Case("MatMulInteger", [A_U8, B_I8, np.array(7, U8), np.array([0, 1, -1, 2, 5], I8)], opset=10)
    model, feeds = make_model(case)
    got = lower(model, verify=False).predict(feeds)["out0"]
    np.testing.assert_array_equal(got, a @ b)

    bias = rand(4, dtype=np.int32, low=-500, high=500)
    case = Case("QLinearConv", qargs(X_U8, 0.05, np.array(128, U8)) + qargs(W_I8, 0.01, np.array(0, I8))
                + [np.array(0.1, np.float32), np.array(120, U8), bias], {"pads": [1, 1, 1, 1]}, opset=10,
                const_inputs=(1, 2, 3, 4, 5, 6, 7, 8))
    model, feeds = make_model(case)
    got = lower(model, verify=False).predict(feeds)["out0"]
    acc = torch.nn.functional.conv2d(
        torch.tensor(X_U8.astype(np.float64) - 128), torch.tensor(W_I8.astype(np.float64)),
        torch.tensor(bias.astype(np.float64)), padding=1,
    ).numpy()
    multiplier = np.float32(np.float32(0.05) * np.float32(0.01) / np.float32(0.1))
    expected = np.clip(np.round(acc.astype(np.float32) * multiplier) + 120, 0, 255).astype(U8)
    np.testing.assert_array_equal(got, expected)


def test_float6_output_is_unsupported() -> None:
    from onnx import helper

    from pipeline.errors import UnsupportedOpError
    from pipeline.lowering import lower

    node = helper.make_node("QuantizeLinear", ["x", "s"], ["y"], output_dtype=TensorProto.FLOAT6E2M3)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT6E2M3, [2, 3])],
        [onnx.numpy_helper.from_array(S, "s")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", onnx.defs.onnx_opset_version())])
    with pytest.raises(UnsupportedOpError, match="FLOAT6E2M3"):
        lower(model, verify=False)


def test_matmul_integer_per_row_zero_point_matches_numpy() -> None:
    # onnxruntime rejects per-row a_zero_point (the spec allows it): numpy is the reference.
    from pipeline.lowering import lower
    from tests.lowering.support import make_model

    row_zp = np.array([1, 50, 200], U8)
    model, feeds = make_model(Case("MatMulInteger", [A_U8, B_U8, np.array(3, U8)], opset=10))
    model.graph.input.pop()  # a_zero_point becomes a per-row initializer
    feeds.pop("in2")
    model.graph.initializer.append(onnx.numpy_helper.from_array(row_zp, "in2"))
    got = lower(model, verify=False).predict(feeds)["out0"]
    expected = (A_U8.astype(np.int64) - row_zp[:, None]) @ B_U8.astype(np.int64)
    np.testing.assert_array_equal(got, expected)
