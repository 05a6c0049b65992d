"""Lowering of comparisons, logic and Where, checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lowering.support import Case, check, check_neural_network, rand

F16 = np.float16
I64 = np.int64
I32 = np.int32


def ints(*shape: int, seed: int = 0, dtype: type = I64) -> np.ndarray:
    # A narrow range so that equal elements (ties) occur.
    return rand(*shape, dtype=dtype, low=-2, high=2, seed=seed)


def bools(*shape: int, seed: int = 0) -> np.ndarray:
    return rand(*shape, dtype=np.bool_, seed=seed)


TIES = np.array([1.0, 2.0, 3.0, -1.0], np.float32)
TIES_B = np.array([1.0, 3.0, 2.0, -1.0], np.float32)

CASES = [
    Case("Equal", [ints(2, 3), ints(3, seed=1)], opset=7),
    Case("Equal", [ints(2, 3, dtype=I32), ints(2, 3, seed=1, dtype=I32)], opset=11),
    Case("Equal", [TIES, TIES_B], opset=13),
    Case("Equal", [TIES.astype(F16), TIES_B.astype(F16)], opset=19),
    Case("Equal", [bools(2, 3), bools(3, seed=1)], opset=11, id="Equal-bool"),
    Case("Greater", [TIES, TIES_B], opset=7),
    Case("Greater", [rand(2, 3), rand(2, 1, seed=1)], opset=9),
    Case("Greater", [ints(2, 3), ints(3, seed=1)], opset=13),
    Case("Greater", [TIES.astype(F16), TIES_B.astype(F16)], opset=13),
    Case("GreaterOrEqual", [TIES, TIES_B], opset=12),
    Case("GreaterOrEqual", [ints(2, 3), ints(2, 3, seed=1)], opset=16),
    Case("GreaterOrEqual", [TIES.astype(F16), TIES_B.astype(F16)], opset=16),
    Case("Less", [TIES, TIES_B], opset=7),
    Case("Less", [ints(4, 1), ints(1, 3, seed=1)], opset=9),
    Case("Less", [TIES.astype(F16), TIES_B.astype(F16)], opset=13),
    Case("LessOrEqual", [TIES, TIES_B], opset=12),
    Case("LessOrEqual", [ints(4, 1, dtype=I32), ints(3, seed=1, dtype=I32)], opset=16),
    Case("LessOrEqual", [TIES.astype(F16), TIES_B.astype(F16)], opset=16),
    Case("And", [bools(2, 3), bools(2, 3, seed=1)], opset=7),
    Case("And", [bools(2, 3), bools(3, seed=1)], opset=7, id="And-bcast"),
    Case("Or", [bools(2, 3), bools(1, 3, seed=1)], opset=7),
    Case("Xor", [bools(4, 1), bools(3, seed=1)], opset=7),
    Case("Not", [bools(2, 3)], opset=1),
    Case("Where", [bools(2, 3), rand(2, 3), rand(2, 3, seed=1)], opset=9),
    Case("Where", [bools(3), rand(2, 3), rand(2, 1, seed=1)], opset=16, id="Where-bcast"),
    Case("Where", [bools(2, 3), rand(2, 3, dtype=F16), rand(3, dtype=F16, seed=1)], opset=16),
    Case("Where", [bools(2, 3), ints(2, 3), ints(3, seed=1)], opset=16, id="Where-int64"),
    Case(
        "Where",
        [bools(2, 3), rand(2, 3), np.array(0.0, np.float32)],
        opset=16,
        const_inputs=(2,),
        id="Where-const-scalar",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_logical(case: Case) -> None:
    check(case)


# Every fifth fp32/int case on the neural-network backend (see test_elementwise).
NN_CASES = [c for c in CASES if all(a is None or a.dtype != F16 for a in c.inputs)][::5]


@pytest.mark.parametrize("case", NN_CASES, ids=str)
def test_logical_neural_network(case: Case) -> None:
    check_neural_network(case)
