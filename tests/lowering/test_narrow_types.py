"""Narrow element types (float8, float4, float8e8m0, int4/uint4, int2/uint2) held in fp32/int32.

The reference is onnx's ReferenceEvaluator (ml_dtypes and onnx.numpy_helper underneath); every
result is compared bit for bit after conversion back to the narrow type, so the sign of zeros
and of NaNs, ties, saturation and subnormals all count.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from pipeline.lowering import lower

#: Ties of every float8/float4 grid, saturation (448, 464, 465, 57344, 61440 ...), subnormals,
#: signed zeros, NaN and infinities, values far outside every range.
EDGES = np.array(
    [0.48, 0.25, 1.05, -3.5, -8, 9, 1e6, 1e-7, np.nan, np.inf, -np.inf, -4, 0.01, -0.0, 0.0,
     464, 465, 448, 240, 248, 250, 57344, 61440, 61439, -61440, 2**-10, 3 * 2**-11, -1.5 * 2**-10,
     2**-17, 2**-18, 3 * 2**-18, 0.75, 1.25, -2.5, 5, 7, 1.0625, 1.1875, -1e-40, 3e38],
    np.float32,
)
#: Integers and fractions around the 4- and 2-bit ranges (truncation, then wrap-around).
INTS = np.concatenate([np.arange(-20, 21, dtype=np.float32), [2.5, -1.5, 7.9, -8.1, 1e6, np.nan, np.inf]]).astype(np.float32)
#: Exponent rounding of float8e8m0: powers of two, 1.5 ties, fp32 subnormals, the top exponent.
E8M0_VALUES = np.array(
    [0, -0.0, 1, 1.5, 1.4999, 3, -5, 0.75, 6, 2**-127, 1.5 * 2**-127, 2**-128, 2**-149, 1e-40,
     2**-126, 3e38, 2**127, 1.5 * 2**127, 1.7e38, np.nan, np.inf, -np.inf],
    np.float32,
)

SMALL_FLOATS = [TP.FLOAT8E4M3FN, TP.FLOAT8E4M3FNUZ, TP.FLOAT8E5M2, TP.FLOAT8E5M2FNUZ, TP.FLOAT4E2M1]
SMALL_INTS = [TP.INT4, TP.UINT4, TP.INT2, TP.UINT2]


def _model(nodes: list[onnx.NodeProto], inputs: list[tuple[str, int, list[int]]], out: tuple[str, int, list[int]],
           inits: list[onnx.TensorProto] | None = None, opset: int = 25) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(*i) for i in inputs], [helper.make_tensor_value_info(*out)], inits or []
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 11
    onnx.checker.check_model(model)
    return model


def _bits(arr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(arr).view(np.uint8)


def _check(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> None:
    (expected,) = ReferenceEvaluator(model).run(None, feeds)
    actual = lower(model, target="iOS18", verify=False).predict(feeds)[model.graph.output[0].name]
    assert actual.dtype == expected.dtype
    if expected.dtype.itemsize == 1:
        np.testing.assert_array_equal(_bits(actual), _bits(expected))
    else:
        np.testing.assert_array_equal(actual, expected)


def _cast(to: int, x: np.ndarray, **attrs: object) -> None:
    src = helper.np_dtype_to_tensor_dtype(x.dtype)
    model = _model([helper.make_node("Cast", ["x"], ["y"], to=to, **attrs)], [("x", src, list(x.shape))], ("y", to, list(x.shape)))
    _check(model, {"x": x})


@pytest.mark.parametrize("saturate", [1, 0])
@pytest.mark.parametrize("to", SMALL_FLOATS, ids=TP.DataType.Name)
def test_cast_to_small_float(to: int, saturate: int) -> None:
    _cast(to, EDGES, saturate=saturate)


@pytest.mark.parametrize("to", [TP.FLOAT8E4M3FN, TP.FLOAT8E5M2FNUZ, TP.FLOAT4E2M1], ids=TP.DataType.Name)
def test_cast_fp16_to_small_float(to: int) -> None:
    _cast(to, EDGES[np.abs(EDGES) < 60000].astype(np.float16), saturate=0)


@pytest.mark.parametrize("saturate", [1, 0])
@pytest.mark.parametrize("mode", ["up", "down", "nearest"])
def test_cast_to_e8m0(mode: str, saturate: int) -> None:
    _cast(TP.FLOAT8E8M0, E8M0_VALUES, saturate=saturate, round_mode=mode)


@pytest.mark.parametrize("to", SMALL_INTS, ids=TP.DataType.Name)
def test_cast_float_to_small_int(to: int) -> None:
    _cast(to, INTS)


@pytest.mark.parametrize("to", [TP.INT4, TP.UINT2], ids=TP.DataType.Name)
def test_cast_int_to_small_int_wraps(to: int) -> None:
    _cast(to, np.arange(-40, 41, dtype=np.int32))


@pytest.mark.parametrize("src", [*SMALL_FLOATS, TP.FLOAT8E8M0, *SMALL_INTS], ids=TP.DataType.Name)
def test_narrow_input_and_output(src: int) -> None:
    """A narrow model input is fed exactly; Cast to float and back to the type is the identity."""
    narrow = onnx.helper.tensor_dtype_to_np_dtype(src)
    values = INTS if src in SMALL_INTS else EDGES
    x = values.astype(narrow)
    nodes = [helper.make_node("Cast", ["x"], ["f"], to=TP.FLOAT), helper.make_node("Cast", ["f"], ["y"], to=src)]
    _check(_model(nodes, [("x", src, [x.size])], ("y", src, [x.size])), {"x": x})


def test_castlike_with_empty_target() -> None:
    """CastLike's target_type is used for its type only: an empty model input is fine."""
    model = _model(
        [helper.make_node("CastLike", ["x", "like"], ["y"])],
        [("x", TP.FLOAT, [EDGES.size]), ("like", TP.FLOAT8E5M2FNUZ, [0])],
        ("y", TP.FLOAT8E5M2FNUZ, [EDGES.size]),
    )
    like = np.zeros(0, onnx.helper.tensor_dtype_to_np_dtype(TP.FLOAT8E5M2FNUZ))
    _check(model, {"x": EDGES, "like": like})


@pytest.mark.parametrize("elem", [*SMALL_FLOATS[:4], TP.INT4, TP.UINT4, TP.INT2, TP.UINT2], ids=TP.DataType.Name)
def test_quantize_dequantize(elem: int) -> None:
    """QuantizeLinear to ``elem`` (per axis, zero point initializer) and DequantizeLinear back."""
    narrow = onnx.helper.tensor_dtype_to_np_dtype(elem)
    x = (np.random.default_rng(0).standard_normal((3, 8)) * 4).astype(np.float32)
    x[0, :4] = [0.5, -1.5, 1e9, -1e9]  # ties and saturation
    scale = np.array([0.5, 0.25, 2.0], np.float32)
    zp = np.array([0, 1, 0] if elem in SMALL_INTS else [0, 0, 0], np.float32).astype(narrow)
    inits = [numpy_helper.from_array(scale, "s"), numpy_helper.from_array(zp, "z")]
    q = _model([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=0)], [("x", TP.FLOAT, [3, 8])],
               ("y", elem, [3, 8]), inits)
    _check(q, {"x": x})
    dq = _model([helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=0)], [("q", elem, [3, 8])],
                ("y", TP.FLOAT, [3, 8]), inits)
    (qx,) = ReferenceEvaluator(q).run(None, {"x": x})
    _check(dq, {"q": qx})


def test_quantize_float4_with_zero_point() -> None:
    x = np.linspace(-8, 8, 33, dtype=np.float32)
    inits = [numpy_helper.from_array(np.array(2.0, np.float32), "s"),
             numpy_helper.from_array(np.array(0.5, np.float32).astype(onnx.helper.tensor_dtype_to_np_dtype(TP.FLOAT4E2M1)), "z")]
    model = _model([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])], [("x", TP.FLOAT, [33])],
                   ("y", TP.FLOAT4E2M1, [33]), inits)
    _check(model, {"x": x})


@pytest.mark.parametrize("saturate", [1, 0])
def test_quantize_float8_saturate(saturate: int) -> None:
    with np.errstate(over="ignore"):
        x = EDGES * np.float32(2)
    inits = [numpy_helper.from_array(np.array(2.0, np.float32), "s")]
    node = helper.make_node("QuantizeLinear", ["x", "s"], ["y"], output_dtype=TP.FLOAT8E4M3FN, saturate=saturate)
    _check(_model([node], [("x", TP.FLOAT, [x.size])], ("y", TP.FLOAT8E4M3FN, [x.size]), inits), {"x": x})


@pytest.mark.parametrize("op", ["QuantizeLinear", "DequantizeLinear"])
def test_blocked_with_runtime_scale(op: str) -> None:
    """block_size with the scale a model input: the scale repeats along the axis (cut to 5)."""
    rng = np.random.default_rng(1)
    scale = rng.uniform(0.5, 2, (2, 3)).astype(np.float32)
    if op == "QuantizeLinear":
        x, elem_x, elem_y = (rng.standard_normal((5, 3)) * 20).astype(np.float32), TP.FLOAT, TP.INT8
    else:
        x, elem_x, elem_y = rng.integers(-100, 100, (5, 3)).astype(np.int8), TP.INT8, TP.FLOAT
    extra = {"output_dtype": TP.INT8} if op == "QuantizeLinear" else {}
    node = helper.make_node(op, ["x", "s"], ["y"], axis=0, block_size=3, **extra)
    model = _model([node], [("x", elem_x, [5, 3]), ("s", TP.FLOAT, [2, 3])], ("y", elem_y, [5, 3]))
    _check(model, {"x": x, "s": scale})


def test_rank5_cast() -> None:
    """The grid lookup adds an axis: a rank-5 tensor (Core ML's limit) is looked up flat."""
    x = EDGES[:32].reshape(2, 2, 2, 2, 2)
    _cast(TP.FLOAT8E4M3FN, x, saturate=0)
    _cast(TP.FLOAT8E8M0, x, round_mode="nearest")
