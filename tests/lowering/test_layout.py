"""Lowering of layout ops (Transpose, Concat, Split, DepthToSpace, SpaceToDepth) against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.lowering import lower
from tests.lowering.support import Case, check, make_model, rand

F16 = np.float16
I64 = np.int64
I32 = np.int32


def ints(*values: int) -> np.ndarray:
    return np.asarray(values, I64)


CASES = [
    # Transpose: default perm reverses; explicit perm; identity perm; int64 and bool.
    Case("Transpose", [rand(2, 3, 4)], opset=7, id="Transpose-default"),
    Case("Transpose", [rand(2, 3, 4, dtype=F16)], {"perm": [1, 0, 2]}, opset=13),
    Case("Transpose", [rand(2, 3, dtype=I64)], {"perm": [0, 1]}, opset=21, id="Transpose-identity"),
    Case("Transpose", [rand(2, 3, 4, dtype=np.bool_)], {"perm": [2, 0, 1]}, opset=13),
    # Concat: negative axis (11), three inputs, a constant input, int64, an empty input.
    Case("Concat", [rand(2, 3), rand(2, 1, seed=1)], {"axis": 1}, opset=4),
    Case("Concat", [rand(2, 3, dtype=F16), rand(1, 3, dtype=F16), rand(3, 3, dtype=F16)], {"axis": -2}, opset=11),
    Case("Concat", [rand(2, 2, dtype=I64), rand(2, 2, dtype=I64)], {"axis": 0}, const_inputs=(1,), opset=13),
    Case("Concat", [ints(3, 4), np.zeros(0, I64)], {"axis": 0}, opset=13, const_inputs=(1,), id="Concat-empty-input"),
    Case("Concat", [rand(2, 3)], {"axis": 0}, opset=13, id="Concat-single"),
    # Split: even by default, split attribute (<13), split input (13), num_outputs (18, uneven).
    Case("Split", [rand(4, 6)], {"axis": 1}, opset=11, n_outputs=3),
    Case("Split", [rand(5, 2, dtype=F16)], {"split": [2, 3]}, opset=11, n_outputs=2),
    Case("Split", [rand(2, 7), ints(3, 4)], {"axis": -1}, const_inputs=(1,), opset=13, n_outputs=2),
    Case("Split", [rand(6, dtype=I64)], opset=13, n_outputs=2, id="Split-even-int64"),
    Case("Split", [rand(7, 2)], {"num_outputs": 3}, opset=18, n_outputs=3, id="Split-num-outputs-uneven"),
    Case("Split", [rand(2, 8, dtype=F16)], {"num_outputs": 4, "axis": 1}, opset=18, n_outputs=4),
    # DepthToSpace: DCR (default, opset 1/11), CRD (11); int8/uint8 (ORT has no int64 kernel) via the composite.
    Case("DepthToSpace", [rand(1, 8, 2, 3)], {"blocksize": 2}, opset=7),
    Case("DepthToSpace", [rand(2, 8, 2, 2)], {"blocksize": 2, "mode": "DCR"}, opset=11),
    Case("DepthToSpace", [rand(1, 18, 2, 2)], {"blocksize": 3, "mode": "CRD"}, opset=13),
    Case("DepthToSpace", [rand(1, 8, 2, 3, dtype=F16)], {"blocksize": 2, "mode": "CRD"}, opset=13),
    Case("DepthToSpace", [rand(1, 8, 2, 3, dtype=np.int8, low=-9, high=9)], {"blocksize": 2}, opset=13, id="DepthToSpace-DCR-int8"),
    Case("DepthToSpace", [rand(1, 8, 2, 3, dtype=np.uint8, low=0, high=200)], {"blocksize": 2, "mode": "CRD"}, opset=13,
         id="DepthToSpace-CRD-uint8"),
    # SpaceToDepth: float (native) and int8 (composite).
    Case("SpaceToDepth", [rand(1, 3, 4, 6)], {"blocksize": 2}, opset=7),
    Case("SpaceToDepth", [rand(2, 2, 6, 3, dtype=F16)], {"blocksize": 3}, opset=13),
    Case("SpaceToDepth", [rand(1, 2, 4, 4, dtype=np.int8, low=-9, high=9)], {"blocksize": 2}, opset=13, id="SpaceToDepth-int8"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_layout(case: Case) -> None:
    check(case)


LEAN = [
    (Case("DepthToSpace", [rand(1, 8, 2, 3)], {"blocksize": 2, "mode": "CRD"}, opset=13), {"pixel_shuffle": 1}),
    (Case("DepthToSpace", [rand(1, 8, 2, 3)], {"blocksize": 2}, opset=13), {"depth_to_space": 1}),
    (Case("Transpose", [rand(2, 3)], {"perm": [0, 1]}, opset=13), {}),
    (Case("Concat", [ints(3, 4), np.zeros(0, I64)], {"axis": 0}, opset=13, const_inputs=(1,)), {}),
    (Case("Split", [rand(7, 2)], {"num_outputs": 3}, opset=18, n_outputs=3), {"split": 1}),
]


@pytest.mark.parametrize("case,ops", LEAN, ids=lambda v: str(v) if isinstance(v, Case) else "")
def test_layout_lean(case: Case, ops: dict[str, int]) -> None:
    """One native MIL op where MIL has one; nothing for no-ops (output identity not counted)."""
    model, _ = make_model(case)
    hist = {k: v for k, v in lower(model, verify=False).report["mil_ops"].items() if k != "identity"}
    assert hist == ops


@pytest.mark.parametrize("target,dtype", [("iOS16", np.float32), ("iOS18", np.float16), ("iOS15", np.float32),
                                          ("iOS16", np.int32)])
def test_space_to_depth_crd(target: str, dtype: type) -> None:
    """Regression (onnx node test test_spacetodepth_crd_mode_example): opset 28's CRD mode was read
    as DCR.  Expected side: torch's pixel_unshuffle (CRD is PyTorch's order); onnxruntime has no
    opset-28 SpaceToDepth."""
    import onnx
    import torch
    from onnx import helper

    from pipeline.lowering import lower

    x = rand(2, 3, 4, 6, dtype=dtype, low=-9, high=9)
    elem = helper.np_dtype_to_tensor_dtype(x.dtype)
    node = helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=2, mode="CRD")
    graph = helper.make_graph([node], "s2d", [helper.make_tensor_value_info("x", elem, list(x.shape))],
                              [helper.make_tensor_value_info("y", elem, [2, 12, 2, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 28)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    actual = lower(model, target=target, verify=False).predict({"x": x})["y"]
    expected = torch.nn.functional.pixel_unshuffle(torch.from_numpy(x), 2).numpy()
    np.testing.assert_array_equal(actual, expected)
