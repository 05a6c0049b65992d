"""Lowering of Det (Leibniz composite), checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lowering.support import Case, check, rand

CASES = [
    Case("Det", [rand(2, 2)], opset=11, id="det-2x2"),
    Case("Det", [rand(3, 3)], opset=11, id="det-3x3-scalar-out"),
    Case("Det", [rand(4, 3, 3)], opset=11, id="det-batched-3x3"),
    Case("Det", [rand(2, 3, 4, 4, low=-1, high=1)], opset=22, id="det-batched-4x4"),
    Case("Det", [rand(2, 5, 5, low=-1, high=1)], opset=22, id="det-5x5"),
    Case("Det", [rand(3, 1, 1)], opset=11, id="det-1x1"),
    Case("Det", [rand(2, 3, 3, dtype=np.float16, low=-1, high=1)], opset=11, id="det-fp16"),
    Case("Det", [rand(2, 3, 3)], opset=11, const_inputs=(0,), id="det-const-folds"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_det(case: Case) -> None:
    check(case)


def test_det_too_large_is_unsupported() -> None:
    from pipeline.errors import UnsupportedOpError
    from pipeline.lowering import lower
    from tests.lowering.support import make_model

    model, _ = make_model(Case("Det", [rand(6, 6)], opset=11))
    with pytest.raises(UnsupportedOpError, match="up to 5x5"):
        lower(model, verify=False)
