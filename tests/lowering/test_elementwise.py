"""Lowering of elementwise arithmetic, checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lowering.support import Case, check, rand

CASES = [
    Case("Add", [rand(2, 3), rand(3)]),
    Case("Add", [rand(2, 3, dtype=np.float16), rand(2, 1, dtype=np.float16)]),
    Case("Sub", [rand(4, 1, 5), rand(1, 3, 1)], opset=14),
    Case("Mul", [rand(2, 3, dtype=np.int32, low=-5, high=5), rand(3, dtype=np.int32, low=-5, high=5)]),
    Case("Div", [rand(2, 3), rand(2, 3, low=0.5, high=2.0)]),
    Case("Div", [np.array([7, -7, 7, -7, 6, 0], np.int64), np.array([2, 2, -2, -2, 3, 5], np.int64)], id="Div-int-trunc"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_elementwise(case: Case) -> None:
    check(case)


def test_integer_div_by_constant_stays_exact() -> None:
    # coremltools rewrites x / c into x * (1/c); integer division must not go through that.
    a = np.array([6, 9, -9, 21, 49, 7], np.int64)
    b = np.array([3, 3, 3, 7, 7, 7], np.int64)
    check(Case("Div", [a, b], const_inputs=(1,)))
