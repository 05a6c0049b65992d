"""CumProd: onnxruntime vs lower + our executor (the Hillis-Steele scan composite)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lowering.support import Case, check, rand

AX0, AX1, AXN = (np.array(a, np.int64) for a in (0, 1, -1))
X = rand(3, 7, 5, low=0.5, high=1.5)

CASES = [
    Case("CumProd", [X, AX1], opset=26, const_inputs=(1,), id="axis1"),
    Case("CumProd", [X, AXN], {"exclusive": 1}, opset=26, const_inputs=(1,), id="neg-axis-exclusive"),
    Case("CumProd", [X, AX1], {"reverse": 1}, opset=26, const_inputs=(1,), id="reverse"),
    Case("CumProd", [X, AX0], {"reverse": 1, "exclusive": 1}, opset=26, const_inputs=(1,), id="reverse-exclusive"),
    Case("CumProd", [rand(2, 9, low=-2, high=2), AX1], opset=26, const_inputs=(1,), id="signs-and-n9"),
    Case("CumProd", [np.array([[1.5, 0.0, 2.0, -3.0, 0.5], [-1.0, 2.0, 0.0, 0.0, 4.0]], np.float32), AX1],
         {"exclusive": 1}, opset=26, const_inputs=(1,), id="zeros-and-negatives"),
    Case("CumProd", [rand(4, 1), AX1], opset=26, const_inputs=(1,), id="length1"),
    Case("CumProd", [rand(16, low=0.8, high=1.2, dtype=np.float16), AX0], opset=26, const_inputs=(1,), id="fp16"),
    Case("CumProd", [rand(3, 6, dtype=np.int64, low=-3, high=3), np.array(1, np.int32)], {"exclusive": 1},
         opset=26, const_inputs=(1,), id="int64-exclusive"),
    Case("CumProd", [rand(2, 5, dtype=np.int32, low=-4, high=4), AX1], {"reverse": 1}, opset=26,
         const_inputs=(1,), id="int32-reverse"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_cum_prod(case: Case) -> None:
    check(case)
