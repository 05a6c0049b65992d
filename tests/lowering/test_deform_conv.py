"""DeformConv: onnxruntime vs lower + our executor (bilinear-gather + matmul composite)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lowering.support import Case, check, rand


def _case(n: int, c: int, hw: int, oc: int, k: int, *, group: int = 1, offset_group: int = 1, stride: int = 1,
          pad: int = 0, dilation: int = 1, bias: bool = False, mask: bool = False, dtype: type = np.float32,
          opset: int = 19, id: str = "") -> Case:
    ohw = (hw + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    x = rand(n, c, hw, hw, dtype=dtype)
    # Kernel values at a conv layer's usual scale (He init: std sqrt(2 / fan_in) ~ 0.3 here).
    w = rand(oc, c // group, k, k, low=-0.5, high=0.5, dtype=dtype, seed=1)
    # Offsets up to +-2.5 pixels: positions land between pixels and outside the input.
    offset = rand(n, offset_group * k * k * 2, ohw, ohw, low=-2.5, high=2.5, dtype=dtype, seed=2)
    inputs = [x, w, offset, rand(oc, dtype=dtype, seed=3) if bias else None]
    if mask:
        inputs.append(rand(n, offset_group * k * k, ohw, ohw, low=0.0, high=1.0, dtype=dtype, seed=4))
    attrs = {"kernel_shape": [k, k], "strides": [stride] * 2, "pads": [pad] * 4, "dilations": [dilation] * 2,
             "group": group, "offset_group": offset_group}
    const = (1, 3) if bias else (1,)
    return Case("DeformConv", inputs, attrs, opset=opset, const_inputs=const, id=id)


CASES = [
    _case(1, 2, 5, 3, 3, id="basic"),
    _case(2, 4, 6, 4, 3, pad=1, bias=True, mask=True, id="pad-bias-mask"),
    _case(1, 4, 7, 6, 3, stride=2, dilation=2, pad=2, group=2, offset_group=2, id="stride-dilation-groups"),
    _case(1, 4, 5, 2, 2, offset_group=4, mask=True, opset=22, id="offset-groups-22"),
    _case(1, 2, 5, 2, 3, pad=1, dtype=np.float16, id="fp16"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_deform_conv(case: Case) -> None:
    check(case)
