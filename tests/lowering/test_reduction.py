"""Lowering of reductions and ArgMax/ArgMin, checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lowering.support import Case, check, check_neural_network, rand

F16 = np.float16
I64 = np.int64
I32 = np.int32

#: ONNX reduction -> the opset from which axes is an input (before: an attribute).
REDUCTIONS = {
    "ReduceSum": 13,
    "ReduceMean": 18,
    "ReduceMax": 18,
    "ReduceMin": 18,
    "ReduceProd": 18,
    "ReduceL1": 18,
    "ReduceL2": 18,
    "ReduceLogSum": 18,
    "ReduceLogSumExp": 18,
    "ReduceSumSquare": 18,
}
# ReduceLogSum needs a positive sum; the others take any sign.
POSITIVE = {"ReduceLogSum"}


def data(op: str, *shape: int, dtype: type = np.float32) -> np.ndarray:
    low, high = (0.1, 2.0) if op in POSITIVE else (-2.0, 2.0)
    return rand(*shape, dtype=dtype, low=low, high=high)


CASES: list[Case] = []
for _op, _since in REDUCTIONS.items():
    _old = _since - 1
    CASES += [
        Case(_op, [data(_op, 2, 3, 4)], {"axes": [1]}, opset=_old, id=f"{_op}-attr-axis1"),
        Case(
            _op,
            [data(_op, 2, 3, 4)],
            {"axes": [0, -1], "keepdims": 0},
            opset=_old,
            id=f"{_op}-attr-neg-nokeep",
        ),
        Case(_op, [data(_op, 2, 3, 4)], {}, opset=_old, id=f"{_op}-attr-all"),
        Case(
            _op,
            [data(_op, 2, 3, 4), np.array([-2], I64)],
            opset=_since,
            const_inputs=(1,),
            id=f"{_op}-input-axis",
        ),
        Case(
            _op,
            [data(_op, 2, 3, 4), np.array([0, 2], I64)],
            {"keepdims": 0},
            opset=_since,
            const_inputs=(1,),
            id=f"{_op}-input-nokeep",
        ),
        Case(
            _op, [data(_op, 2, 3, 4)], {"keepdims": 0}, opset=_since, id=f"{_op}-input-omitted-all"
        ),
        Case(
            _op,
            [data(_op, 2, 3, 4), np.array([], I64)],
            {"noop_with_empty_axes": 1},
            opset=_since,
            const_inputs=(1,),
            id=f"{_op}-noop-empty",
        ),
        Case(
            _op,
            [data(_op, 2, 3, 4, dtype=F16), np.array([1], I64)],
            opset=_since,
            const_inputs=(1,),
            id=f"{_op}-fp16",
        ),
    ]
CASES += [
    Case(
        "ReduceSum",
        [rand(2, 3, dtype=I64, low=-9, high=9)],
        {"axes": [1]},
        opset=11,
        id="ReduceSum-int64",
    ),
    Case(
        "ReduceMax",
        [rand(2, 3, dtype=I32, low=-9, high=9), np.array([0], I64)],
        opset=18,
        const_inputs=(1,),
        id="ReduceMax-int32",
    ),
    Case(
        "ReduceMin",
        [rand(2, 3, dtype=I64, low=-9, high=9)],
        {"axes": [0], "keepdims": 0},
        opset=13,
        id="ReduceMin-int64",
    ),
    Case(
        "ReduceProd",
        [rand(2, 3, dtype=I64, low=-3, high=3)],
        {"axes": [1]},
        opset=13,
        id="ReduceProd-int64",
    ),
    Case(
        "ReduceLogSumExp",
        [
            np.array([[100.0, 101.0, -50.0], [-100.0, -101.0, -99.0]], np.float32),
            np.array([1], I64),
        ],
        opset=18,
        const_inputs=(1,),
        id="ReduceLogSumExp-wide-range",
    ),
]

TIES = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, -1.0, 2.0], [0.0, -4.0, 5.0, -4.0]], np.float32)
for _op in ("ArgMax", "ArgMin"):
    CASES += [
        Case(_op, [rand(2, 3, 4)], opset=11, id=f"{_op}-default"),
        Case(_op, [rand(2, 3, 4)], {"axis": -1, "keepdims": 0}, opset=11, id=f"{_op}-neg-nokeep"),
        Case(_op, [rand(2, 3, 4)], {"axis": 1}, opset=1, id=f"{_op}-opset1"),
        Case(_op, [TIES], {"axis": 1}, opset=12, id=f"{_op}-ties-first"),
        Case(_op, [TIES], {"axis": 1, "select_last_index": 1}, opset=12, id=f"{_op}-ties-last"),
        Case(
            _op,
            [TIES.T.copy()],
            {"axis": 0, "select_last_index": 1, "keepdims": 0},
            opset=13,
            id=f"{_op}-ties-last-axis0",
        ),
        Case(
            _op,
            [TIES.astype(F16)],
            {"axis": -1, "select_last_index": 1},
            opset=13,
            id=f"{_op}-fp16-last",
        ),
        Case(
            _op, [rand(2, 5, dtype=I32, low=-2, high=2)], {"axis": 1}, opset=13, id=f"{_op}-int32"
        ),
    ]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_reduction(case: Case) -> None:
    check(case)


# Every fifth fp32/int case on the neural-network backend (see test_elementwise).
NN_CASES = [c for c in CASES if all(a is None or a.dtype != F16 for a in c.inputs)][::5]


@pytest.mark.parametrize("case", NN_CASES, ids=str)
def test_reduction_neural_network(case: Case) -> None:
    check_neural_network(case)


def test_every_handler_of_these_families_has_a_case_per_version() -> None:
    """Each handler registered by the five families is exercised by a case of its opset range."""
    from pipeline.lowering.registry import HANDLERS
    from tests.lowering import test_activation, test_elementwise, test_logical, test_math_unary

    modules = {"elementwise", "math_unary", "logical", "activation", "softmax", "reduction"}
    tables = [test_activation, test_elementwise, test_logical, test_math_unary]
    cases = [c for t in tables for c in t.CASES] + CASES
    missing = []
    for entry in HANDLERS:
        if entry.value.__module__.rsplit(".", 1)[-1] not in modules or entry.key[0]:
            continue
        versions = [e.since for e in HANDLERS.versions(entry.name)]
        later = [v for v in versions if v > entry.since]
        until = min(later) if later else 10**6
        if not any(c.op == entry.name and entry.since <= c.opset < until for c in cases):
            missing.append(f"{entry.name}@{entry.since}")
    assert not missing, f"handlers without a case: {missing}"
