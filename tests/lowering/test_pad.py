"""Lowering of Pad (constant, reflect, edge, wrap; attribute and input forms) against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.lowering import lower
from tests.lowering.support import Case, check, make_model, rand

F16 = np.float16
I64 = np.int64


def ints(*values: int) -> np.ndarray:
    return np.asarray(values, I64)


def value(v: float, dtype: type = np.float32) -> np.ndarray:
    return np.asarray(v, dtype)


CASES = [
    # Opset 2: pads/mode/value attributes.
    Case("Pad", [rand(2, 3)], {"pads": [0, 1, 1, 2], "value": 1.5}, opset=7, id="Pad2-constant"),
    Case("Pad", [rand(1, 2, 4)], {"pads": [0, 0, 2, 0, 0, 1], "mode": "reflect"}, opset=7, id="Pad2-reflect"),
    Case("Pad", [rand(1, 2, 3, dtype=F16)], {"pads": [0, 1, 2, 0, 2, 1], "mode": "edge"}, opset=7, id="Pad2-edge-fp16"),
    # Opset 11+: pads and constant_value inputs.
    Case("Pad", [rand(2, 3, 4), ints(0, 1, 2, 0, 1, 0), value(-3.0)], const_inputs=(1, 2), opset=11),
    Case("Pad", [rand(2, 3, 4, dtype=F16), ints(0, 0, 1, 0, 0, 1)], {"mode": "reflect"}, const_inputs=(1,), opset=13),
    Case("Pad", [rand(2, 3, 4), ints(1, 0, 2, 1, 1, 1)], {"mode": "edge"}, const_inputs=(1,), opset=13),
    Case("Pad", [rand(3, 5), ints(-1, 2, 0, -2)], const_inputs=(1,), opset=13, id="Pad-negative-crops"),
    Case("Pad", [rand(2, 3), ints(0, 0, 0, 0)], const_inputs=(1,), opset=13, id="Pad-zero-pads"),
    # Integer and bool tensors: slices + concat composite.
    Case("Pad", [rand(2, 3, dtype=I64, low=-9, high=9), ints(1, 0, 0, 2), value(7, I64)], const_inputs=(1, 2),
         opset=13, id="Pad-int64-constant"),
    Case("Pad", [rand(2, 4, dtype=I64, low=-9, high=9), ints(1, 2, 1, 1)], {"mode": "edge"}, const_inputs=(1,),
         opset=13, id="Pad-int64-edge"),
    Case("Pad", [rand(3, 4, dtype=np.int32, low=-9, high=9), ints(2, 1, 0, 2)], {"mode": "reflect"},
         const_inputs=(1,), opset=18, id="Pad-int32-reflect"),
    Case("Pad", [rand(2, 3, dtype=np.bool_), ints(0, 1, 1, 0)], const_inputs=(1,), opset=13, id="Pad-bool"),
    # Opset 18: axes input (negative); opset 19: wrap (also longer than the dim).
    Case("Pad", [rand(2, 3, 4), ints(1, 2), value(0.5), ints(-1)], const_inputs=(1, 2, 3), opset=18, id="Pad-axes"),
    Case("Pad", [rand(2, 3, 4), ints(1, 2, 1, 1), None, ints(0, 2)], {"mode": "reflect"}, const_inputs=(1, 3),
         opset=18, id="Pad-axes-reflect"),
    Case("Pad", [rand(2, 3, 4), ints(0, 1, 2, 0, 2, 1)], {"mode": "wrap"}, const_inputs=(1,), opset=19, id="Pad-wrap"),
    Case("Pad", [rand(2, 3, dtype=F16), ints(0, 4, 0, 5)], {"mode": "wrap"}, const_inputs=(1,), opset=19,
         id="Pad-wrap-longer-than-dim"),
    Case("Pad", [rand(2, 3, dtype=I64), ints(1, 1, 1, 1)], {"mode": "wrap"}, const_inputs=(1,), opset=21,
         id="Pad-wrap-int64"),
    # Run-time pads (constant mode, float): reordered to MIL's interleaved pairs.
    Case("Pad", [rand(2, 3), ints(1, 0, 0, 2)], opset=13, id="Pad-runtime-pads"),
    # Other deployment targets.
    Case("Pad", [rand(2, 3, 4), ints(0, 1, 2, 0, 1, 0)], {"mode": "edge"}, const_inputs=(1,), opset=13,
         target="iOS15", id="Pad-edge-iOS15"),
    Case("Pad", [rand(2, 3), ints(1, 1, 1, 1)], {"mode": "wrap"}, const_inputs=(1,), opset=19, target="iOS18",
         id="Pad-wrap-iOS18"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_pad(case: Case) -> None:
    check(case)


LEAN = [
    (Case("Pad", [rand(1, 2, 4), ints(0, 0, 2, 0, 0, 1)], {"mode": "reflect"}, const_inputs=(1,), opset=13), {"pad": 1}),
    (Case("Pad", [rand(3, 5), ints(-1, 2, 0, -2)], const_inputs=(1,), opset=13), {"slice_by_index": 1, "pad": 1}),
    (Case("Pad", [rand(2, 3), ints(0, 1, 0, 2)], {"mode": "wrap"}, const_inputs=(1,), opset=19),
     # the two wrap slices tile the axis ([0:2] and [2:3]): the clean-up makes them one split
     {"split": 1, "concat": 1}),
]


@pytest.mark.parametrize("case,ops", LEAN, ids=lambda v: str(v) if isinstance(v, Case) else "")
def test_pad_lean(case: Case, ops: dict[str, int]) -> None:
    """MIL pad for float constant/reflect/edge; wrap costs two slices (or one split) and a concat per axis."""
    model, _ = make_model(case)
    hist = {k: v for k, v in lower(model, verify=False).report["mil_ops"].items() if k != "identity"}
    assert hist == ops
