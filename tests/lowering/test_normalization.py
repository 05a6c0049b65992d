"""Lowering of normalizations (BatchNormalization ... RMSNormalization), checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lowering.support import Case, check, rand

F16 = np.float16


def pos(*shape: int, dtype: object = np.float32, seed: int = 3) -> np.ndarray:
    return rand(*shape, dtype=dtype, low=0.5, high=1.5, seed=seed)


def bn_inputs(x: np.ndarray, c: int, dtype: object = np.float32) -> list[np.ndarray]:
    return [
        x,
        pos(c, dtype=dtype),
        rand(c, dtype=dtype, seed=4),
        rand(c, dtype=dtype, seed=5),
        pos(c, dtype=dtype, seed=6),
    ]


CASES = [
    Case(
        "BatchNormalization",
        bn_inputs(rand(2, 3, 4, 5), 3),
        {"epsilon": 1e-3},
        opset=7,
        const_inputs=(1, 2, 3, 4),
    ),
    Case(
        "BatchNormalization",
        bn_inputs(rand(2, 3, 4), 3),
        opset=9,
        const_inputs=(1, 2, 3, 4),
        id="BN-1d",
    ),
    Case(
        "BatchNormalization",
        bn_inputs(rand(4, 3), 3),
        opset=14,
        const_inputs=(1, 2, 3, 4),
        id="BN-rank2",
    ),
    Case(
        "BatchNormalization",
        bn_inputs(rand(3, 2, 5), 2),
        {"spatial": 1},
        opset=7,
        id="BN-7-dynamic-rank3",
    ),
    Case("BatchNormalization", bn_inputs(rand(2, 3, 4, 5), 3), opset=15, id="BN-dynamic-params"),
    Case(
        "BatchNormalization",
        bn_inputs(rand(2, 3, 4, 5, dtype=F16), 3, F16),
        opset=15,
        const_inputs=(1, 2, 3, 4),
        id="BN-fp16",
    ),
    Case(
        "InstanceNormalization",
        [rand(2, 3, 4, 5), pos(3), rand(3, seed=4)],
        {"epsilon": 1e-3},
        opset=6,
        const_inputs=(1, 2),
    ),
    Case(
        "InstanceNormalization",
        [rand(2, 3, 7), pos(3), rand(3, seed=4)],
        opset=22,
        const_inputs=(1, 2),
        id="IN-1d",
    ),
    Case(
        "InstanceNormalization",
        [rand(1, 2, 3, 4, 5), pos(2), rand(2, seed=4)],
        const_inputs=(1, 2),
        id="IN-3d",
    ),
    Case("InstanceNormalization", [rand(2, 3, 4, 5), pos(3), rand(3, seed=4)], id="IN-dynamic"),
    Case(
        "InstanceNormalization",
        [rand(2, 3, 4, 5, dtype=F16), pos(3, dtype=F16), rand(3, dtype=F16, seed=4)],
        const_inputs=(1, 2),
        id="IN-fp16",
    ),
    Case("LayerNormalization", [rand(2, 3, 8), pos(8), rand(8, seed=4)], const_inputs=(1, 2)),
    Case(
        "LayerNormalization",
        [rand(2, 3, 4), pos(3, 4), rand(3, 4, seed=4)],
        {"axis": 1, "epsilon": 1e-3},
        const_inputs=(1, 2),
        id="LN-axis1",
    ),
    Case(
        "LayerNormalization",
        [rand(2, 3, 4), pos(1), None],
        {"axis": -2},
        const_inputs=(1,),
        id="LN-scale-broadcast-no-bias",
    ),
    Case("LayerNormalization", [rand(2, 3, 8), pos(8), rand(8, seed=4)], id="LN-dynamic-params"),
    Case(
        "LayerNormalization",
        [rand(2, 3, 8), pos(8), rand(8, seed=4)],
        {"axis": -1},
        const_inputs=(1, 2),
        n_outputs=3,
        id="LN-mean-invstd",
    ),
    Case(
        "LayerNormalization",
        [rand(2, 5, 16, dtype=F16), pos(16, dtype=F16), rand(16, dtype=F16, seed=4)],
        const_inputs=(1, 2),
        id="LN-fp16",
    ),
    Case(
        "GroupNormalization",
        [rand(2, 6, 3, 4), pos(6), rand(6, seed=4)],
        {"num_groups": 2},
        opset=21,
        const_inputs=(1, 2),
        id="GN-21-per-channel",
    ),
    Case(
        "GroupNormalization",
        [rand(1, 4, 3, 3), np.ones(4, np.float32), np.zeros(4, np.float32)],
        {"num_groups": 4},
        opset=21,
        const_inputs=(1, 2),
        id="GN-21-identity-affine",
    ),
    Case(
        "GroupNormalization",
        [rand(2, 8, 6, dtype=F16), pos(8, dtype=F16), rand(8, dtype=F16, seed=4)],
        {"num_groups": 4},
        opset=21,
        const_inputs=(1, 2),
        id="GN-21-fp16",
    ),
    Case("LpNormalization", [rand(2, 3, 4)], opset=7),
    Case("LpNormalization", [rand(2, 3, 4)], {"p": 1, "axis": 1}, opset=22, id="LpNorm-p1-axis1"),
    Case("LpNormalization", [rand(3, 5, dtype=F16)], {"axis": -2}, id="LpNorm-fp16"),
    Case("LRN", [rand(2, 5, 3, 4)], {"size": 3}, opset=7),
    # onnxruntime implements LRN for 4-D inputs and odd sizes only.
    Case(
        "LRN",
        [rand(1, 6, 4, 4)],
        {"size": 5, "alpha": 1e-2, "beta": 0.5, "bias": 2.0},
        opset=13,
        id="LRN-size5",
    ),
    Case("LRN", [rand(1, 4, 3, 3, dtype=F16)], {"size": 3}, id="LRN-fp16"),
    Case("MeanVarianceNormalization", [rand(2, 3, 4, 5)], opset=9),
    Case(
        "MeanVarianceNormalization", [rand(2, 3, 4)], {"axes": [-1]}, opset=13, id="MVN-last-axis"
    ),
    # No fp16 case: the spec's function body adds a float epsilon, so fp16 models fail shape inference.
    Case("MeanVarianceNormalization", [rand(2, 3, 4, 5)], {"axes": [1, 2, 3]}, id="MVN-axes123"),
    Case("RMSNormalization", [rand(2, 3, 8), pos(8)], opset=23, const_inputs=(1,)),
    Case(
        "RMSNormalization",
        [rand(2, 3, 4), pos(3, 4)],
        {"axis": 1, "epsilon": 1e-3},
        opset=23,
        id="RMS-axis1-dynamic-scale",
    ),
    Case(
        "RMSNormalization",
        [rand(2, 4, 16, dtype=F16), pos(16, dtype=F16)],
        opset=23,
        const_inputs=(1,),
        id="RMS-fp16",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_normalization(case: Case) -> None:
    check(case)


def _group_norm_18_reference(
    x: np.ndarray, scale: np.ndarray, bias: np.ndarray, groups: int, eps: float
) -> np.ndarray:
    """Opset-18 GroupNormalization in numpy: statistics per (n, group), scale/bias per group."""
    n = x.shape[0]
    g = x.reshape(n, groups, -1).astype(np.float64)
    norm = (g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + eps)
    return (norm * scale[:, None] + bias[:, None]).reshape(x.shape).astype(x.dtype)


@pytest.mark.parametrize("const", [True, False], ids=["const-params", "dynamic-params"])
def test_group_normalization_opset18(const: bool) -> None:
    # The expected values come from numpy: the opset-18 form is checked against the spec's text.
    from onnx import TensorProto, helper, numpy_helper

    from pipeline.lowering import lower

    x, scale, bias = rand(2, 6, 3, 4), pos(3), rand(3, seed=4)
    eps = 1e-3
    node = helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=3, epsilon=eps)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))]
    inits, feeds = [], {"x": x}
    for name, arr in (("s", scale), ("b", bias)):
        if const:
            inits.append(numpy_helper.from_array(arr, name))
        else:
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(arr.shape)))
            feeds[name] = arr
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(x.shape))
    model = helper.make_model(
        helper.make_graph([node], "gn18", inputs, [out], inits),
        opset_imports=[helper.make_opsetid("", 18)],
    )
    model.ir_version = 8
    actual = lower(model, target="iOS16", verify=False).predict(feeds)["y"]
    expected = _group_norm_18_reference(x, scale, bias, 3, eps)
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("p,dtype", [(2, np.float32), (1, np.float32), (2, np.float16)])
def test_lp_normalization_zero_norm(p: int, dtype: type) -> None:
    """Regression (onnx node test test_l2normalization_axis_0): where the norm along the axis is
    0 the spec (opset 22 text) defines y = 0, not 0/0 = NaN.  Expected side: numpy from the spec
    (onnxruntime and onnx's ReferenceEvaluator are not used: the latter omits |x| for p=1)."""
    from pipeline.lowering.stage import lower as lower_model
    from tests.lowering.support import make_model, tolerance_for

    x = rand(3, 4, dtype=dtype)
    x[:, [1, 3]] = 0
    model, feeds = make_model(Case("LpNormalization", [x], {"p": p, "axis": 0}, opset=22))
    actual = lower_model(model, verify=False).predict(feeds)
    (name,) = actual
    x64 = x.astype(np.float64)
    norm = np.linalg.norm(x64, ord=p, axis=0, keepdims=True)
    expected = np.where(norm == 0, 0.0, x64 / np.where(norm == 0, 1.0, norm))
    atol, rtol = tolerance_for(dtype)
    assert not np.isnan(actual[name]).any()
    np.testing.assert_allclose(actual[name].astype(np.float64), expected, atol=atol, rtol=rtol)


def test_mvn_default_axes_passes_the_checker() -> None:
    """Regression (onnx node test test_mvn): onnx's full checker fails inside the function body of
    MeanVarianceNormalization when axes is omitted; the model is valid (axes defaults to [0,2,3]).
    Expected side: onnxruntime.  The user's model is left unchanged."""
    import onnx
    from onnx import TensorProto, helper

    from pipeline.lowering import lower
    from pipeline.lowering.reference import run_onnxruntime

    x = rand(3, 3, 3, 1)
    node = helper.make_node("MeanVarianceNormalization", ["X"], ["Y"])
    graph = helper.make_graph([node], "mvn", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [3, 3, 3, 1])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3, 3, 3, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    before = model.SerializeToString()
    actual = lower(model, verify=False).predict({"X": x})["Y"]
    assert model.SerializeToString() == before
    expected = run_onnxruntime(model, {"X": x})["Y"]
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=1e-4)
    assert not [a for a in onnx.load_from_string(before).graph.node[0].attribute]
