"""BitShift and Bitwise{And,Or,Xor,Not}: onnxruntime (or numpy where it has no kernel) vs lower +
our executor.  Integer results must match exactly."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from pipeline.lowering import lower
from tests.lowering.support import Case, check


def _ints(shape: tuple[int, ...], dtype: type, seed: int = 0, limit: int = 2**31 - 1) -> np.ndarray:
    """Values spanning the type's range, kept inside int32 as the dtype policy requires (feeds
    outside it saturate) and inside +-``limit``."""
    info = np.iinfo(dtype)
    lo, hi = max(int(info.min), -limit - 1), min(int(info.max), limit)
    rng = np.random.default_rng(seed)
    vals = rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64)
    vals.reshape(-1)[:2] = [lo, hi]
    return vals.astype(dtype)


def _amounts(shape: tuple[int, ...], dtype: type, bits: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, bits, size=shape).astype(dtype)


# onnxruntime 1.32 registers no uint16 BitShift kernel: uint16 is in test_bit_shift_numpy.
UNSIGNED = [(np.uint8, 8), (np.uint32, 32), (np.uint64, 32)]

SHIFT_CASES = []
for dtype, bits in UNSIGNED:
    for direction in ("LEFT", "RIGHT"):
        name = np.dtype(dtype).name
        # 64-bit types compute in 32 bits: keep left-shift results inside int32.
        limit = 2**15 - 1 if dtype == np.uint64 and direction == "LEFT" else 2**31 - 1
        bits = 16 if dtype == np.uint64 and direction == "LEFT" else bits
        SHIFT_CASES.append(Case("BitShift", [_ints((3, 4), dtype, limit=limit), _amounts((3, 4), dtype, bits)],
                                {"direction": direction}, opset=11, id=f"shift-{direction}-{name}-dynamic"))
        SHIFT_CASES.append(Case("BitShift", [_ints((3, 4), dtype, limit=limit), _amounts((4,), dtype, bits)],
                                {"direction": direction}, opset=11, const_inputs=(1,),
                                id=f"shift-{direction}-{name}-const-broadcast"))


@pytest.mark.parametrize("case", SHIFT_CASES, ids=str)
def test_bit_shift_unsigned(case: Case) -> None:
    check(case)


def _numpy_shift(x: np.ndarray, y: np.ndarray, direction: str, bits: int) -> np.ndarray:
    """The opset-28 spec: amounts < 0 or >= bits give the sign fill."""
    xi, yi = x.astype(np.int64), np.broadcast_to(y.astype(np.int64), x.shape)
    out_of_range = (yi < 0) | (yi >= bits)
    safe = np.where(out_of_range, 0, yi)
    if direction == "LEFT":
        z = np.where(out_of_range, 0, np.left_shift(xi, safe))
    else:
        z = np.where(out_of_range, np.where(xi < 0, -1, 0), np.right_shift(xi, safe))
    return z.astype(x.dtype)  # astype wraps to the type's width, as ONNX does


def test_bit_shift_uint32_high_bit() -> None:
    """uint32 values >= 2**31 made inside the graph ((x << 1) >> s) shift logically, not
    arithmetically.  numpy's uint32 shifts are the reference (opset 11)."""
    x = _ints((4, 5), np.uint32)
    s = np.random.default_rng(5).integers(0, 32, size=(4, 5)).astype(np.uint32)
    one = np.ones((1,), np.uint32)
    t = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("BitShift", ["x", "one"], ["up"], direction="LEFT"),
         helper.make_node("BitShift", ["up", "s"], ["z"], direction="RIGHT")],
        "g", [t("x", onnx.TensorProto.UINT32, [4, 5]), t("s", onnx.TensorProto.UINT32, [4, 5])],
        [t("z", onnx.TensorProto.UINT32, [4, 5])], [onnx.numpy_helper.from_array(one, "one")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    actual = lower(model, target="iOS16", verify=False).predict({"x": x, "s": s})["z"]
    np.testing.assert_array_equal(actual, np.right_shift(np.left_shift(x, np.uint32(1)), s))


_NUMPY_SHIFTS = [
    (dtype, bits, direction, const)
    for dtype, bits in [(np.int8, 8), (np.int16, 16), (np.int32, 32), (np.uint16, 16), (np.uint32, 32), (np.int64, 32)]
    for direction in ("LEFT", "RIGHT")
    # Constant amounts fold the power tables (one path for every type): three types suffice.
    for const in ((False, True) if dtype in (np.int8, np.int32, np.uint16) else (False,))
]


@pytest.mark.parametrize("dtype, bits, direction, const", _NUMPY_SHIFTS)
def test_bit_shift_numpy(dtype: type, bits: int, direction: str, const: bool) -> None:
    """Opset 28 (signed types, out-of-range amounts): onnxruntime 1.32 has no kernel, numpy's
    shifts are the reference."""
    wide = dtype == np.int64 and direction == "LEFT"  # 64-bit computes in 32: keep results in int32
    x = _ints((4, 5), dtype, limit=2**15 - 1 if wide else 2**31 - 1)
    y = np.random.default_rng(3).integers(-2, 16 if wide else bits + 3, size=(4, 5)).astype(dtype if np.dtype(dtype).kind == "i" else np.int64)
    y = y.astype(dtype) if np.dtype(dtype).kind == "i" else np.clip(y, 0, None).astype(dtype)
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    node = helper.make_node("BitShift", ["x", "y"], ["z"], direction=direction)
    inputs = [helper.make_tensor_value_info("x", elem, [4, 5])]
    inits = [onnx.numpy_helper.from_array(y, "y")] if const else []
    if not const:
        inputs.append(helper.make_tensor_value_info("y", elem, [4, 5]))
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("z", elem, [4, 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 28)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    feeds = {"x": x} if const else {"x": x, "y": y}
    actual = lower(model, target="iOS16", verify=False).predict(feeds)["z"]
    assert actual.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(actual, _numpy_shift(x, y, direction, 64 if dtype == np.int64 else bits))


ALL_TYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]

# The type handling (bit planes, sign bit) is shared by the three ops: And runs on every type,
# Or and Xor on a signed, an unsigned and a 64-bit one each.
_BINARY_TYPES = {
    "BitwiseAnd": ALL_TYPES,
    "BitwiseOr": [np.uint8, np.int32, np.int64],
    "BitwiseXor": [np.int16, np.uint32, np.uint64],
}
BITWISE_CASES = [
    Case(op, [_ints((3, 4), dtype, seed=1), _ints((3, 4), dtype, seed=2)], opset=18,
         id=f"{op}-{np.dtype(dtype).name}")
    for op, dtypes in _BINARY_TYPES.items()
    for dtype in dtypes
] + [
    Case("BitwiseAnd", [_ints((2, 3, 4), np.int32, seed=1), _ints((4,), np.int32, seed=2)], opset=18,
         const_inputs=(1,), id="and-broadcast-const"),
    Case("BitwiseXor", [_ints((3, 1), np.uint8, seed=1), _ints((1, 5), np.uint8, seed=2)], opset=18,
         id="xor-broadcast-both"),
] + [
    Case("BitwiseNot", [_ints((3, 4), dtype)], opset=18, id=f"not-{np.dtype(dtype).name}") for dtype in ALL_TYPES
]


@pytest.mark.parametrize("case", BITWISE_CASES, ids=str)
def test_bitwise(case: Case) -> None:
    check(case)


def test_bit_shift_narrow_intermediate_wraps() -> None:
    """uint8 (x << 4) >> 2 inside one graph: the left shift must drop the high bits before the
    right shift sees them (the int32 the value computes in would keep them).  numpy is the
    reference."""
    t = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("BitShift", ["x", "a"], ["u"], direction="LEFT"),
         helper.make_node("BitShift", ["u", "b"], ["z"], direction="RIGHT")],
        "g", [t("x", onnx.TensorProto.UINT8, [6])], [t("z", onnx.TensorProto.UINT8, [6])],
        [onnx.numpy_helper.from_array(np.array([4], np.uint8), "a"),
         onnx.numpy_helper.from_array(np.array([2], np.uint8), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    x = np.array([1, 15, 16, 200, 255, 77], np.uint8)
    actual = lower(model, target="iOS16", verify=False).predict({"x": x})["z"]
    np.testing.assert_array_equal(actual, np.right_shift(np.left_shift(x, np.uint8(4)), np.uint8(2)))
