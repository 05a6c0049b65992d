"""Lowering of elementwise unary math (Neg ... IsInf) and Clip, checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lowering.support import Case, check, check_neural_network, rand

F16 = np.float16
I64 = np.int64
I32 = np.int32

# Halves and near-halves: Round must go half to even, Floor/Ceil must not move integers.
HALVES = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, -3.0, 2.0, 0.49, -0.51, 7.25], np.float32)
SPECIAL = np.array([0.0, -1.0, np.inf, -np.inf, np.nan, 3.5, -np.nan, 1e30], np.float32)
SPECIAL16 = np.array([0.0, -1.0, np.inf, -np.inf, np.nan, 3.5, -np.nan, 6e4], F16)

# (op, since, low, high): ops with a bounded domain get inputs inside it.
UNARY = [
    ("Abs", 6, -3, 3),
    ("Sqrt", 6, 0.01, 4),
    ("Exp", 6, -3, 3),
    ("Log", 6, 0.01, 5),
    ("Floor", 6, -3, 3),
    ("Ceil", 6, -3, 3),
    ("Sign", 9, -3, 3),
    ("Sin", 7, -4, 4),
    ("Cos", 7, -4, 4),
    ("Tan", 7, -1.2, 1.2),
    ("Asin", 7, -0.99, 0.99),
    ("Acos", 7, -0.99, 0.99),
    ("Atan", 7, -4, 4),
    ("Sinh", 9, -3, 3),
    ("Cosh", 9, -3, 3),
    ("Asinh", 9, -30, 30),
    ("Acosh", 9, 1.0, 30),
    ("Atanh", 9, -0.95, 0.95),
    ("Erf", 9, -3, 3),
    ("Neg", 6, -3, 3),
    ("Reciprocal", 6, 0.2, 3),
]

CASES = [Case(op, [rand(3, 4, low=lo, high=hi)], opset=since) for op, since, lo, hi in UNARY]
CASES += [
    Case(op, [rand(2, 5, dtype=F16, low=lo, high=hi)], opset=13) for op, since, lo, hi in UNARY
]
CASES += [
    Case("Reciprocal", [-rand(6, low=0.2, high=3)], id="Reciprocal-negative"),
    Case(
        "Reciprocal",
        [np.array([1e-5, -1e-5, 1e-3, 2.0], np.float32)],
        id="Reciprocal-small-no-epsilon",
    ),
    Case("Log", [np.array([1e-30, 1e-10, 1.0, 0.0], np.float32)], id="Log-tiny-and-zero"),
    Case("Asinh", [np.array([-1e4, -100.0, -1e-3, 0.0, 1e-3, 1e4], np.float32)], id="Asinh-wide"),
    Case("Acosh", [np.array([1.0, 1.0001, 1.5, 1e4], np.float32)], id="Acosh-near-one"),
    Case("Round", [HALVES], opset=11, id="Round-halves"),
    Case("Round", [HALVES.astype(F16)], opset=22, id="Round-halves-fp16"),
    Case("Floor", [HALVES], opset=13, id="Floor-halves"),
    Case("Ceil", [HALVES], opset=13, id="Ceil-halves"),
    Case("Abs", [rand(2, 3, dtype=I64, low=-9, high=9)], opset=13, id="Abs-int64"),
    Case("Abs", [rand(2, 3, dtype=I32, low=-9, high=9)], opset=6, id="Abs-int32"),
    Case("Neg", [rand(2, 3, dtype=I64, low=-9, high=9)], opset=13, id="Neg-int64"),
    Case("Sign", [rand(2, 3, dtype=I64, low=-2, high=2)], opset=13, id="Sign-int64"),
    Case("Sign", [np.array([0.0, -0.0, 2.0, -3.0], np.float32)], opset=13, id="Sign-zeros"),
    Case("IsNaN", [SPECIAL], opset=9),
    Case("IsNaN", [SPECIAL16], opset=13),
    Case("IsNaN", [SPECIAL], opset=20, id="IsNaN-opset20"),
    Case("IsInf", [SPECIAL], opset=10),
    Case("IsInf", [SPECIAL16], opset=20),
    Case("IsInf", [SPECIAL], {"detect_negative": 0}, id="IsInf-positive-only"),
    Case("IsInf", [SPECIAL], {"detect_positive": 0}, id="IsInf-negative-only"),
    Case("IsInf", [SPECIAL], {"detect_positive": 0, "detect_negative": 0}, id="IsInf-neither"),
    # Clip: attributes before 11, optional inputs from 11, integer types from 12.
    Case("Clip", [rand(3, 4)], {"min": -0.5, "max": 0.7}, opset=6, id="Clip6-both"),
    Case("Clip", [rand(3, 4)], {"min": 0.0}, opset=6, id="Clip6-min-only"),
    Case("Clip", [rand(3, 4)], {"max": 0.2}, opset=6, id="Clip6-max-only"),
    Case("Clip", [rand(3, 4)], {}, opset=6, id="Clip6-none"),
    Case("Clip", [rand(3, 4, dtype=F16)], {"min": -1.0, "max": 1.0}, opset=6, id="Clip6-fp16"),
    Case(
        "Clip",
        [rand(3, 4), np.array(-0.5, np.float32), np.array(0.5, np.float32)],
        opset=11,
        const_inputs=(1, 2),
        id="Clip11-const",
    ),
    Case(
        "Clip",
        [rand(3, 4), np.array(0.0, np.float32), None],
        opset=11,
        const_inputs=(1,),
        id="Clip11-relu",
    ),
    Case(
        "Clip",
        [rand(3, 4), None, np.array(0.3, np.float32)],
        opset=13,
        const_inputs=(2,),
        id="Clip13-max",
    ),
    Case(
        "Clip",
        [rand(3, 4), np.array(-0.3, np.float32)],
        opset=13,
        const_inputs=(1,),
        id="Clip13-min-only",
    ),
    Case(
        "Clip",
        [rand(3, 4), np.array(-0.5, np.float32), np.array(0.5, np.float32)],
        opset=13,
        id="Clip13-dynamic",
    ),
    Case("Clip", [rand(3, 4)], opset=11, id="Clip11-no-bounds"),
    Case(
        "Clip",
        [rand(3, 4), np.array(0.5, np.float32), np.array(-0.5, np.float32)],
        opset=13,
        const_inputs=(1, 2),
        id="Clip13-min-above-max",
    ),
    Case(
        "Clip",
        [rand(3, 4), np.array(0.5, np.float32), np.array(0.5, np.float32)],
        opset=13,
        const_inputs=(1, 2),
        id="Clip13-equal-bounds",
    ),
    Case(
        "Clip",
        [rand(3, 4, dtype=F16), np.array(-1.0, F16), np.array(1.0, F16)],
        opset=13,
        const_inputs=(1, 2),
        id="Clip13-fp16",
    ),
    Case(
        "Clip",
        [rand(3, 4, dtype=I64, low=-9, high=9), np.array(-3, I64), np.array(4, I64)],
        opset=12,
        const_inputs=(1, 2),
        id="Clip12-int64",
    ),
    Case(
        "Clip",
        [rand(3, 4, dtype=I32, low=-9, high=9), None, np.array(4, I32)],
        opset=13,
        id="Clip13-int32-dyn-max",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_math_unary(case: Case) -> None:
    check(case)


# Every fifth fp32/int case on the neural-network backend (see test_elementwise).
NN_CASES = [c for c in CASES if all(a is None or a.dtype != F16 for a in c.inputs)][::5]


@pytest.mark.parametrize("case", NN_CASES, ids=str)
def test_math_unary_neural_network(case: Case) -> None:
    check_neural_network(case)
