"""Lowering of convolutions and pooling (Conv ... GlobalLpPool), checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lowering.support import Case, check, rand

F16 = np.float16


def w(*shape: int, dtype: object = np.float32, seed: int = 7) -> np.ndarray:
    return rand(*shape, dtype=dtype, low=-0.5, high=0.5, seed=seed)


CONV = [
    Case(
        "Conv",
        [rand(1, 3, 8, 8), w(4, 3, 3, 3), w(4)],
        {"pads": [1, 1, 1, 1]},
        const_inputs=(1, 2),
        opset=7,
    ),
    Case(
        "Conv",
        [rand(2, 4, 9), w(6, 2, 3)],
        {"group": 2, "strides": [2]},
        const_inputs=(1,),
        opset=11,
        id="Conv-1d-group",
    ),
    Case(
        "Conv",
        [rand(1, 2, 5, 6, 4), w(3, 2, 2, 3, 2), w(3)],
        {"pads": [1, 0, 1, 0, 2, 0]},
        const_inputs=(1, 2),
        opset=13,
        id="Conv-3d-asym-pads",
    ),
    Case(
        "Conv",
        [rand(1, 4, 7, 7), w(4, 1, 3, 3), w(4)],
        {"group": 4, "auto_pad": "SAME_UPPER", "strides": [2, 2]},
        const_inputs=(1, 2),
        id="Conv-depthwise-same-upper",
    ),
    Case(
        "Conv",
        [rand(1, 3, 8, 7), w(2, 3, 2, 2)],
        {"auto_pad": "SAME_LOWER", "strides": [3, 2]},
        const_inputs=(1,),
        id="Conv-same-lower",
    ),
    Case(
        "Conv",
        [rand(1, 3, 9, 9), w(2, 3, 3, 3), w(2)],
        {"dilations": [2, 1], "auto_pad": "VALID"},
        const_inputs=(1, 2),
        opset=22,
        id="Conv-dilated-valid",
    ),
    Case(
        "Conv",
        [rand(1, 3, 6, 6), w(2, 3, 3, 3), w(2)],
        {"kernel_shape": [3, 3]},
        id="Conv-dynamic-weight-bias",
    ),
    Case(
        "Conv",
        [rand(1, 3, 6, 6), w(2, 3, 3, 3), w(2)],
        {"pads": [0, 1, 2, 1]},
        target="iOS17",
        const_inputs=(1,),
        id="Conv-dynamic-bias-ios17",
    ),
    Case(
        "Conv",
        [rand(1, 3, 8, 8, dtype=F16), w(4, 3, 3, 3, dtype=F16), w(4, dtype=F16)],
        {"pads": [1, 1, 1, 1]},
        const_inputs=(1, 2),
        id="Conv-fp16",
    ),
]

CONV_T = [
    Case(
        "ConvTranspose",
        [rand(1, 3, 4, 4), w(3, 2, 3, 3), w(2)],
        {"strides": [2, 2]},
        const_inputs=(1, 2),
        opset=7,
    ),
    Case(
        "ConvTranspose",
        [rand(1, 3, 4, 4), w(3, 2, 3, 3), w(2)],
        {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]},
        const_inputs=(1, 2),
        id="ConvT-outpad",
    ),
    Case(
        "ConvTranspose",
        [rand(1, 2, 5), w(2, 3, 3), w(3)],
        {"strides": [3], "output_padding": [2]},
        const_inputs=(1, 2),
        opset=11,
        id="ConvT-outpad-extend",
    ),
    Case(
        "ConvTranspose",
        [rand(1, 4, 3, 5), w(4, 1, 2, 3)],
        {"group": 2, "dilations": [2, 1], "pads": [0, 1, 1, 0]},
        const_inputs=(1,),
        opset=13,
        id="ConvT-group-dil",
    ),
    Case(
        "ConvTranspose",
        [rand(1, 2, 3, 4), w(2, 2, 3, 3), w(2)],
        {"strides": [2, 2], "auto_pad": "SAME_UPPER"},
        const_inputs=(1, 2),
        id="ConvT-same-upper",
    ),
    Case(
        "ConvTranspose",
        [rand(1, 2, 3, 4), w(2, 2, 3, 3)],
        {"strides": [2, 2], "auto_pad": "SAME_LOWER"},
        const_inputs=(1,),
        id="ConvT-same-lower",
    ),
    Case(
        "ConvTranspose",
        [rand(1, 2, 3, 3), w(2, 2, 3, 3), w(2)],
        {"strides": [2, 2], "output_shape": [8, 7]},
        const_inputs=(1, 2),
        opset=22,
        id="ConvT-output-shape",
    ),
    Case(
        "ConvTranspose",
        [rand(1, 2, 3, 3, 2), w(2, 2, 2, 2, 2)],
        {"strides": [1, 2, 1]},
        const_inputs=(1,),
        id="ConvT-3d",
    ),
    Case(
        "ConvTranspose",
        [rand(1, 2, 4, 4), w(2, 3, 3, 3), w(3)],
        {"strides": [2, 2]},
        target="iOS17",
        id="ConvT-dynamic-weight-ios17",
    ),
    Case(
        "ConvTranspose",
        [rand(1, 3, 4, 4, dtype=F16), w(3, 2, 3, 3, dtype=F16), w(2, dtype=F16)],
        {"strides": [2, 2], "pads": [1, 1, 1, 1]},
        const_inputs=(1, 2),
        id="ConvT-fp16",
    ),
]


@pytest.mark.parametrize("case", CONV + CONV_T, ids=str)
def test_conv(case: Case) -> None:
    check(case)


POOL = [
    Case("MaxPool", [rand(1, 2, 7, 7)], {"kernel_shape": [3, 3], "strides": [2, 2]}, opset=7),
    Case(
        "MaxPool",
        [rand(1, 2, 7, 6)],
        {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1]},
        opset=8,
        id="MaxPool-asym-pads",
    ),
    Case(
        "MaxPool",
        [rand(1, 2, 8, 7)],
        {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
        opset=10,
        id="MaxPool-ceil",
    ),
    Case(
        "MaxPool",
        [rand(1, 2, 6, 6)],
        {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1},
        opset=12,
        id="MaxPool-ceil-pads",
    ),
    Case(
        "MaxPool",
        [rand(1, 1, 5)],
        {"kernel_shape": [1], "strides": [3], "ceil_mode": 1},
        opset=22,
        id="MaxPool-ceil-window-past-end",
    ),
    Case(
        "MaxPool",
        [rand(1, 2, 7, 7)],
        {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER", "strides": [2, 2]},
        opset=11,
        id="MaxPool-same-upper",
    ),
    Case(
        "MaxPool",
        [rand(1, 2, 6, 5)],
        {"kernel_shape": [3, 2], "auto_pad": "SAME_LOWER"},
        id="MaxPool-same-lower",
    ),
    Case(
        "MaxPool",
        [rand(1, 2, 9, 8)],
        {"kernel_shape": [2, 3], "dilations": [2, 2], "pads": [1, 0, 1, 2]},
        opset=12,
        id="MaxPool-dilated",
    ),
    Case(
        "MaxPool",
        [rand(1, 2, 4, 5, 6)],
        {"kernel_shape": [2, 2, 3], "strides": [1, 2, 2]},
        id="MaxPool-3d",
    ),
    Case(
        "MaxPool",
        [rand(1, 3, 6, 6, dtype=np.int8, low=-100, high=100)],
        {"kernel_shape": [2, 2]},
        opset=12,
        id="MaxPool-int8",
    ),
    Case(
        "MaxPool",
        [rand(1, 2, 7, 7, dtype=F16)],
        {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
        id="MaxPool-fp16",
    ),
    Case("AveragePool", [rand(1, 2, 7, 7)], {"kernel_shape": [3, 3], "strides": [2, 2]}, opset=7),
    Case(
        "AveragePool",
        [rand(1, 2, 6, 7)],
        {"kernel_shape": [3, 3], "pads": [1, 1, 0, 1]},
        opset=7,
        id="AvgPool-exclude-pad",
    ),
    Case(
        "AveragePool",
        [rand(1, 2, 6, 7)],
        {"kernel_shape": [3, 3], "pads": [1, 1, 0, 1], "count_include_pad": 1},
        opset=10,
        id="AvgPool-include-pad",
    ),
    Case(
        "AveragePool",
        [rand(1, 2, 8, 7)],
        {
            "kernel_shape": [3, 3],
            "strides": [2, 2],
            "pads": [1, 1, 1, 1],
            "ceil_mode": 1,
            "count_include_pad": 1,
        },
        opset=11,
        id="AvgPool-ceil-include-pad",
    ),
    Case(
        "AveragePool",
        [rand(1, 2, 8, 7)],
        {"kernel_shape": [3, 2], "strides": [2, 2], "ceil_mode": 1},
        opset=19,
        id="AvgPool-ceil-exclude",
    ),
    Case(
        "AveragePool",
        [rand(1, 2, 9, 9)],
        {"kernel_shape": [2, 3], "dilations": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1},
        opset=19,
        id="AvgPool-dilated-include",
    ),
    Case(
        "AveragePool",
        [rand(1, 2, 9, 9)],
        {
            "kernel_shape": [3, 2],
            "dilations": [1, 3],
            "strides": [2, 1],
            "pads": [1, 1, 1, 1],
            "ceil_mode": 1,
        },
        opset=22,
        id="AvgPool-dilated-exclude-ceil",
    ),
    Case(
        "AveragePool",
        [rand(1, 2, 7, 7)],
        {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"},
        id="AvgPool-same",
    ),
    Case(
        "AveragePool",
        [rand(2, 3, 8, dtype=F16)],
        {"kernel_shape": [3], "strides": [2]},
        id="AvgPool-1d-fp16",
    ),
    Case(
        "AveragePool",
        [rand(1, 2, 4, 5, 6)],
        {"kernel_shape": [2, 3, 2], "pads": [0, 1, 1, 1, 0, 0]},
        id="AvgPool-3d",
    ),
    Case(
        "LpPool",
        [rand(1, 2, 6, 6)],
        {"kernel_shape": [2, 2], "strides": [2, 2]},
        opset=7,
        id="LpPool-p2",
    ),
    Case(
        "LpPool",
        [rand(1, 2, 6, 6)],
        {"kernel_shape": [3, 3], "p": 1, "pads": [1, 0, 1, 1]},
        opset=11,
        id="LpPool-p1-pads",
    ),
    Case(
        "LpPool",
        [rand(1, 2, 7)],
        {"kernel_shape": [3], "p": 3, "strides": [2], "ceil_mode": 1},
        opset=18,
        id="LpPool-p3-ceil",
    ),
    Case(
        "LpPool",
        [rand(1, 2, 7, 7)],
        {"kernel_shape": [2, 2], "dilations": [2, 2]},
        opset=18,
        id="LpPool-dilated",
    ),
    Case(
        "LpPool",
        [rand(1, 2, 6, 6, dtype=F16, low=-1, high=1)],
        {"kernel_shape": [2, 2]},
        opset=22,
        id="LpPool-fp16",
    ),
    Case("GlobalAveragePool", [rand(2, 3, 4, 5)], opset=7),
    Case("GlobalAveragePool", [rand(2, 3, 6, dtype=F16)], opset=22),
    Case("GlobalMaxPool", [rand(2, 3, 4, 5, 2)], opset=7),
    Case("GlobalLpPool", [rand(2, 3, 4, 5)], opset=7),
    Case("GlobalLpPool", [rand(2, 3, 4, 5)], {"p": 1}, opset=2, id="GlobalLpPool-p1"),
    Case(
        "GlobalLpPool", [rand(2, 3, 4, 5, low=-1, high=1)], {"p": 3}, opset=2, id="GlobalLpPool-p3"
    ),
]


@pytest.mark.parametrize("case", POOL, ids=str)
def test_pool(case: Case) -> None:
    check(case)
