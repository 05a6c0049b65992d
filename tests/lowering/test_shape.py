"""Lowering of shape ops (Shape ... Tile), checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import UnsupportedOpError
from pipeline.lowering import lower
from pipeline.lowering.reference import run_onnxruntime
from tests.lowering.support import Case, check, make_model, rand

F16 = np.float16
I64 = np.int64
I32 = np.int32


def ints(*values: int) -> np.ndarray:
    return np.asarray(values, I64)


CASES = [
    # Shape / Size: static inputs fold; start/end from opset 15 (negative, clamped).
    Case("Shape", [rand(2, 3, 4)], opset=13),
    Case("Shape", [rand(2, 3, 4, dtype=F16)], {"start": 1}, opset=15),
    Case("Shape", [rand(2, 3, 4, 5)], {"start": -3, "end": -1}, opset=15),
    Case("Shape", [rand(2, 3, dtype=I64)], {"start": 0, "end": 9}, opset=19, id="Shape-end-clamped"),
    Case("Size", [rand(2, 3, 4)], opset=13),
    Case("Size", [rand(5, dtype=I64)], opset=19),
    # Reshape: 0 copies a dim, -1 inferred; allowzero (14) without zeros; fp16, int64, const x.
    Case("Reshape", [rand(2, 3, 4), ints(0, -1)], const_inputs=(1,), opset=13),
    Case("Reshape", [rand(2, 3, 4), ints(4, 0, 2)], const_inputs=(1,), opset=5, id="Reshape-zero-mid"),
    Case("Reshape", [rand(2, 3, 4, dtype=F16), ints(-1)], const_inputs=(1,), opset=14),
    Case("Reshape", [rand(6, 4, dtype=I64), ints(2, 3, 4)], {"allowzero": 1}, const_inputs=(1,), opset=14),
    Case("Reshape", [rand(2, 6), ints(3, 4)], const_inputs=(0, 1), opset=19, id="Reshape-const-fold"),
    Case("Reshape", [rand(2, 3, 4), ints(4, 6)], opset=13, id="Reshape-runtime-shape"),
    # Flatten: default axis 1, axis 0, negative axis (11), axis == rank.
    Case("Flatten", [rand(2, 3, 4)], opset=9),
    Case("Flatten", [rand(2, 3, 4)], {"axis": 0}, opset=11),
    Case("Flatten", [rand(2, 3, 4, 5, dtype=F16)], {"axis": -2}, opset=13),
    Case("Flatten", [rand(2, 3, dtype=I64)], {"axis": 2}, opset=13, id="Flatten-axis-rank"),
    # Squeeze / Unsqueeze: axes attribute before 13, input from 13; negative axes; default all.
    Case("Squeeze", [rand(1, 3, 1, 2)], opset=11, id="Squeeze-all"),
    Case("Squeeze", [rand(1, 3, 1, 2)], {"axes": [-2]}, opset=11),
    Case("Squeeze", [rand(1, 3, 1, dtype=F16), ints(0, -1)], const_inputs=(1,), opset=13),
    Case("Squeeze", [rand(1, 1, dtype=I64), ints(0, 1)], const_inputs=(1,), opset=21, id="Squeeze-to-scalar"),
    Case("Unsqueeze", [rand(3, 4)], {"axes": [0, 3]}, opset=11),
    Case("Unsqueeze", [rand(3, 4, dtype=F16), ints(-1, 1)], const_inputs=(1,), opset=13),
    Case("Unsqueeze", [rand(3, dtype=I64), ints(0)], const_inputs=(1,), opset=21),
    # Expand: broadcasts both ways, raises rank, bool, run-time shape.
    Case("Expand", [rand(3, 1), ints(2, 1, 4)], const_inputs=(1,), opset=8),
    Case("Expand", [rand(1, 4, dtype=F16), ints(3, 1)], const_inputs=(1,), opset=13, id="Expand-both-ways"),
    Case("Expand", [rand(2, 1, dtype=I64), ints(2, 5)], const_inputs=(1,), opset=13),
    Case("Expand", [rand(3, dtype=np.bool_), ints(2, 3)], const_inputs=(1,), opset=13),
    Case("Expand", [rand(3, 1), ints(3, 4)], opset=13, id="Expand-runtime-shape"),
    Case("Expand", [rand(3, 1, dtype=np.bool_), ints(1, 4)], opset=13, id="Expand-runtime-bool"),
    # Tile: constant repeats, int64, fp16, run-time repeats.
    Case("Tile", [rand(2, 3), ints(2, 1)], const_inputs=(1,), opset=6),
    Case("Tile", [rand(2, 3, dtype=F16), ints(1, 3)], const_inputs=(1,), opset=13),
    Case("Tile", [rand(2, 2, dtype=I64), ints(3, 2)], const_inputs=(1,), opset=13),
    Case("Tile", [rand(2, 3), ints(2, 2)], opset=13, id="Tile-runtime-repeats"),
    # Other deployment targets (MIL reshape/squeeze/expand_dims changed at iOS17).
    Case("Reshape", [rand(2, 3, 4), ints(4, 0, 2)], const_inputs=(1,), opset=13, target="iOS15", id="Reshape-iOS15"),
    Case("Reshape", [rand(2, 3, 4, dtype=F16), ints(0, -1)], const_inputs=(1,), opset=21, target="iOS18",
         id="Reshape-iOS18"),
    Case("Squeeze", [rand(1, 3, 1), ints(0)], const_inputs=(1,), opset=13, target="iOS17", id="Squeeze-iOS17"),
    Case("Expand", [rand(3, 1), ints(2, 3, 4)], const_inputs=(1,), opset=13, target="iOS18", id="Expand-iOS18"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_shape(case: Case) -> None:
    check(case)


# -- flexible (symbolic) input dims: the run-time paths ---------------------------------------
def check_flexible(case: Case, axis: int, bounds: tuple[int, int] = (1, 8)) -> None:
    """Like ``check``, with axis ``axis`` of input 0 declared flexible (symbolic) to the lowering."""
    model, feeds = make_model(case)
    dim = model.graph.input[0].type.tensor_type.shape.dim[axis]
    dim.Clear()
    dim.dim_param = "N"
    for out in model.graph.output:
        for i, d in enumerate(out.type.tensor_type.shape.dim):
            d.Clear()
            d.dim_param = f"out{i}"
    expected = run_onnxruntime(model, feeds)
    result = lower(model, target=case.target, verify=False, flexible={"in0": {axis: bounds}})
    actual = result.predict(feeds)
    for name, exp in expected.items():
        assert actual[name].dtype == exp.dtype
        np.testing.assert_array_equal(actual[name], exp) if exp.dtype.kind != "f" else np.testing.assert_allclose(
            actual[name], exp, atol=1e-5, rtol=1e-4
        )


FLEXIBLE = [
    (Case("Shape", [rand(3, 2, 4)], {"start": 1}, opset=15, id="Shape-flexible-start"), 0),
    (Case("Shape", [rand(3, 2, 4)], opset=13, id="Shape-flexible"), 1),
    (Case("Size", [rand(3, 2, 4)], opset=13, id="Size-flexible"), 0),
    (Case("Reshape", [rand(3, 2, 4), ints(0, -1)], const_inputs=(1,), opset=13, id="Reshape-flexible-zero"), 0),
    (Case("Reshape", [rand(2, 3, 4), ints(1, 0, -1)], const_inputs=(1,), opset=14, id="Reshape-flexible-zero-mid"), 1),
    (Case("Flatten", [rand(3, 2, 4)], {"axis": 2}, opset=13, id="Flatten-flexible"), 0),
    (Case("Expand", [rand(3, 1), ints(1, 4)], const_inputs=(1,), opset=13, id="Expand-flexible"), 0),
    (Case("Unsqueeze", [rand(3, 2), ints(-1)], const_inputs=(1,), opset=13, id="Unsqueeze-flexible"), 0),
]


@pytest.mark.parametrize("case,axis", FLEXIBLE, ids=lambda v: str(v) if isinstance(v, Case) else "")
def test_shape_flexible(case: Case, axis: int) -> None:
    check_flexible(case, axis)


# -- leanness: constants fold, no-ops emit nothing ---------------------------------------------
LEAN = [
    (Case("Shape", [rand(2, 3)], opset=13), {}),
    (Case("Reshape", [rand(2, 3, 4), ints(0, -1)], const_inputs=(1,), opset=13), {"reshape": 1}),
    (Case("Expand", [rand(3, 1), ints(2, 3, 4)], const_inputs=(1,), opset=13), {"reshape": 1, "tile": 1}),
    (Case("Squeeze", [rand(1, 3), ints(0)], const_inputs=(1,), opset=13), {"squeeze": 1}),
    (Case("Tile", [rand(2, 3), ints(1, 1)], const_inputs=(1,), opset=13), {}),
    (Case("Flatten", [rand(2, 3, 4)], {"axis": 1}, opset=13), {"reshape": 1}),
]


@pytest.mark.parametrize("case,ops", LEAN, ids=lambda v: str(v) if isinstance(v, Case) else "")
def test_shape_lean(case: Case, ops: dict[str, int]) -> None:
    """The MIL program holds exactly these ops besides the output identity (not counted)."""
    model, _ = make_model(case)
    result = lower(model, target=case.target, verify=False)
    hist = {k: v for k, v in result.report["mil_ops"].items() if k != "identity"}
    assert hist == ops


def test_reshape_to_empty_is_unsupported() -> None:
    model, _ = make_model(Case("Reshape", [np.zeros((0, 3), np.float32), ints(3, 0)], {"allowzero": 1},
                                 const_inputs=(0, 1), opset=14))
    with pytest.raises(UnsupportedOpError, match="Reshape.*empty tensor"):
        lower(model, verify=False)


# -- regressions from onnx's node tests (test_reshape_zero_dim, test_reshape_zero_and_negative_dim):
# a run-time shape with 0 entries copies x's dims from the left (MIL's own 0 counts from the right).
RUNTIME_ZERO = [
    Case("Reshape", [rand(2, 3, 4), ints(2, 0, 4, 1)], opset=14, target="iOS18", id="Reshape-runtime-zero-iOS18"),
    Case("Reshape", [rand(2, 3, 4), ints(2, 0, 1, -1)], opset=14, target="iOS18", id="Reshape-runtime-zero-neg"),
    Case("Reshape", [rand(2, 3, 4, dtype=F16), ints(0, -1)], opset=13, target="iOS16", id="Reshape-runtime-zero-iOS16"),
]


@pytest.mark.parametrize("case", RUNTIME_ZERO, ids=str)
def test_reshape_runtime_zero(case: Case) -> None:
    check(case)


def test_reshape_runtime_zero_flexible() -> None:
    check_flexible(Case("Reshape", [rand(3, 2, 4), ints(0, 4, -1)], opset=14, target="iOS18",
                        id="Reshape-runtime-zero-flexible"), 0)
