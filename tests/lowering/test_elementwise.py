"""Lowering of elementwise arithmetic (Add ... Mean), checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import UnsupportedOpError
from pipeline.lowering import lower
from tests.lowering.support import Case, check, check_neural_network, make_model, rand

F16 = np.float16
I64 = np.int64
I32 = np.int32

# Signed integer numerators/denominators covering every sign combination and exact quotients.
NUM = np.array([7, -7, 7, -7, 6, -6, 0, 1, -1, 100, -100, 13], I64)
DEN = np.array([2, 2, -2, -2, 3, -3, 5, 3, 3, -7, 7, 13], I64)

CASES = [
    Case("Add", [rand(2, 3), rand(3)]),
    Case("Add", [rand(2, 3, dtype=F16), rand(2, 1, dtype=F16)]),
    Case(
        "Add",
        [rand(2, 3, dtype=I64, low=-9, high=9), rand(1, 3, dtype=I64, low=-9, high=9)],
        opset=7,
    ),
    Case("Add", [rand(2, 3), rand(2, 3)], opset=14, const_inputs=(1,)),
    Case("Sub", [rand(4, 1, 5), rand(1, 3, 1)], opset=14),
    Case(
        "Sub", [rand(3, dtype=I64, low=-9, high=9), rand(2, 3, dtype=I64, low=-9, high=9)], opset=13
    ),
    Case("Sub", [rand(2, 3, dtype=F16), rand(3, dtype=F16)], opset=7),
    Case("Mul", [rand(2, 3, dtype=I32, low=-5, high=5), rand(3, dtype=I32, low=-5, high=5)]),
    Case("Mul", [rand(2, 3, 4), rand(4)], opset=7),
    Case("Mul", [rand(5, dtype=F16), rand(1, dtype=F16)], opset=14),
    Case("Div", [rand(2, 3), rand(2, 3, low=0.5, high=2.0)]),
    Case("Div", [rand(2, 3, dtype=F16), rand(3, dtype=F16, low=0.5, high=2.0)], opset=7),
    Case("Div", [NUM, DEN], id="Div-int64-trunc"),
    Case("Div", [NUM.astype(I32), DEN.astype(I32)], opset=13, id="Div-int32-trunc"),
    Case("Div", [NUM, DEN], const_inputs=(1,), id="Div-int64-const-mixed-signs"),
    Case(
        "Div",
        [NUM.reshape(3, 4), np.array([3, -3, 4, 1], I64)],
        const_inputs=(1,),
        id="Div-int64-const-bcast",
    ),
    Case(
        "Div", [NUM, np.array([4], I64)], const_inputs=(1,), opset=14, id="Div-int64-const-positive"
    ),
    Case("Div", [np.array([2, -2, 9], I64), DEN.reshape(12, 1)], id="Div-int64-bcast-both"),
    # Pow: float/float, mixed exponent types (opset 12+), integer base, special constant exponents.
    Case("Pow", [rand(2, 3, low=0.1, high=3.0), rand(2, 3)]),
    Case("Pow", [rand(2, 3, low=0.1, high=3.0), rand(3)], opset=7),
    Case("Pow", [rand(4, dtype=F16, low=0.1, high=2.0), rand(4, dtype=F16)], opset=15),
    Case(
        "Pow",
        [rand(2, 3), np.array(2.0, np.float32)],
        const_inputs=(1,),
        id="Pow-square-negative-base",
    ),
    Case(
        "Pow",
        [rand(2, 3, low=0.0, high=4.0), np.array([0.5], np.float32)],
        const_inputs=(1,),
        id="Pow-sqrt",
    ),
    Case(
        "Pow",
        [rand(2, 3), np.array(3.0, np.float32)],
        const_inputs=(1,),
        id="Pow-cube-negative-base",
    ),
    Case("Pow", [rand(2, 3), np.array(1.0, np.float32)], const_inputs=(1,), id="Pow-one"),
    Case(
        "Pow",
        [rand(2, 3, low=0.1, high=3.0), np.array([2, 3, -1], I64)],
        opset=12,
        id="Pow-float-int64-exp",
    ),
    Case(
        "Pow",
        [rand(2, 3), np.array([2, 3, 1], I64)],
        opset=13,
        const_inputs=(1,),
        id="Pow-float-const-int-exp",
    ),
    Case(
        "Pow",
        [rand(2, 3, dtype=I64, low=-4, high=4), np.array([0, 1, 3], I64)],
        opset=13,
        id="Pow-int64",
    ),
    Case(
        "Pow",
        [rand(5, dtype=I32, low=-4, high=4), np.array(2, I32)],
        opset=15,
        const_inputs=(1,),
        id="Pow-int32-const",
    ),
    Case(
        "Pow",
        [rand(2, 3, dtype=F16, low=-2, high=2), np.array(2.0, np.float32)],
        opset=15,
        const_inputs=(1,),
        id="Pow-fp16-fp32-square",
    ),
    # Mod: floor semantics (fmod=0, integers) and C semantics (fmod=1).
    Case("Mod", [NUM, DEN], opset=10, id="Mod-int64-fmod0"),
    Case("Mod", [NUM.astype(I32), DEN.astype(I32)], {"fmod": 1}, opset=13, id="Mod-int32-fmod1"),
    Case("Mod", [NUM, DEN], {"fmod": 1}, const_inputs=(1,), id="Mod-int64-fmod1-const"),
    Case(
        "Mod",
        [NUM.reshape(3, 4), np.array([3, -3, 4, 1], I64)],
        const_inputs=(1,),
        id="Mod-int64-fmod0-const-bcast",
    ),
    Case(
        "Mod",
        [rand(2, 5, low=-6, high=6), rand(5, low=0.7, high=2.0)],
        {"fmod": 1},
        id="Mod-float-fmod1",
    ),
    Case(
        "Mod",
        [rand(2, 5, low=-6, high=6), -rand(5, low=0.7, high=2.0)],
        {"fmod": 1},
        id="Mod-float-fmod1-negdiv",
    ),
    Case(
        "Mod",
        [rand(8, dtype=F16, low=-6, high=6), rand(8, dtype=F16, low=0.7, high=2.0)],
        {"fmod": 1},
        id="Mod-fp16-fmod1",
    ),
    # Variadic ops.
    Case("Max", [rand(2, 3)], opset=8, id="Max-one-input"),
    Case("Max", [rand(2, 3), rand(3, seed=1), rand(2, 1, seed=2)], opset=8),
    Case(
        "Max",
        [rand(2, 3, dtype=I64, low=-9, high=9), rand(3, dtype=I64, low=-9, high=9, seed=1)],
        opset=13,
    ),
    Case("Max", [rand(4, dtype=F16), rand(4, dtype=F16, seed=3)], opset=12),
    Case("Min", [rand(2, 3), rand(3, seed=1), rand(2, 1, seed=2)], opset=13),
    Case(
        "Min",
        [rand(2, 3, dtype=I32, low=-9, high=9), rand(2, 3, dtype=I32, low=-9, high=9, seed=1)],
        opset=12,
    ),
    Case("Min", [rand(2, 3)], opset=6, id="Min-opset6-one-input"),
    Case("Sum", [rand(2, 3), rand(3, seed=1), rand(2, 1, seed=2)], opset=8),
    Case("Sum", [rand(2, 3, dtype=F16)], opset=13, id="Sum-one-input-fp16"),
    Case("Mean", [rand(2, 3), rand(3, seed=1), rand(2, 1, seed=2)], opset=8),
    Case("Mean", [rand(2, 3, dtype=F16), rand(2, 3, dtype=F16, seed=4)], opset=13),
    Case("Mean", [rand(2, 3)], opset=13, id="Mean-one-input"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_elementwise(case: Case) -> None:
    check(case)


def test_integer_div_by_constant_stays_exact() -> None:
    # coremltools rewrites x / c into x * (1/c); integer division must not go through that.
    a = np.array([6, 9, -9, 21, 49, 7], np.int64)
    b = np.array([3, 3, 3, 7, 7, 7], np.int64)
    check(Case("Div", [a, b], const_inputs=(1,)))


def test_integer_div_large_values_exact() -> None:
    # Quotients near 2**24 + 1 are where a float32 route would round; floor_div on int32 does not.
    a = np.array([16777217, -16777217, 2147483647, -2147483647, 33554433], np.int64)
    b = np.array([1, 1, 3, 7, -1], np.int64)
    check(Case("Div", [a, b], id="Div-int64-large"))


# Every third fp32/int case: the neural-network backend translates the same MIL ops differently
# (a constant pow exponent becomes a scalar power layer, for instance).
# Pow-float-const-int-exp has no neural-network form (see the test after this one).
NN_CASES = [
    c
    for c in CASES
    if all(a is None or a.dtype != F16 for a in c.inputs) and str(c) != "Pow-float-const-int-exp"
][::3]


@pytest.mark.parametrize("case", NN_CASES, ids=str)
def test_elementwise_neural_network(case: Case) -> None:
    check_neural_network(case)


def test_pow_constant_exponent_tensor_on_neural_network_explains() -> None:
    case = Case("Pow", [rand(2, 3), np.array([2, 3, 1], I64)], opset=13, const_inputs=(1,))
    model, _ = make_model(case)
    with pytest.raises(UnsupportedOpError, match="mlprogram backend"):
        lower(model, target="iOS14", backend="neuralnetwork", verify=False)
