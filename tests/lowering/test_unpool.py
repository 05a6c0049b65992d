"""MaxUnpool: onnxruntime vs lower + our executor, fed with real MaxPool indices (numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lowering.support import Case, check, rand


def _maxpool_indices(x: np.ndarray, k: int, s: int) -> tuple[np.ndarray, np.ndarray]:
    """2-D max pooling (no padding) in numpy: values and flat indices over the whole tensor."""
    n, c, h, w = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    vals = np.zeros((n, c, oh, ow), x.dtype)
    idx = np.zeros((n, c, oh, ow), np.int64)
    for b, ch, i, j in np.ndindex(n, c, oh, ow):
        win = x[b, ch, i * s:i * s + k, j * s:j * s + k]
        r, q = np.unravel_index(int(np.argmax(win)), win.shape)
        vals[b, ch, i, j] = win[r, q]
        idx[b, ch, i, j] = ((b * c + ch) * h + i * s + r) * w + j * s + q
    return vals, idx


V, I = _maxpool_indices(rand(2, 3, 6, 6), 2, 2)
V16, I16 = _maxpool_indices(rand(1, 2, 4, 4, dtype=np.float16), 2, 2)
V3, I3 = _maxpool_indices(rand(1, 2, 7, 7), 3, 2)

CASES = [
    Case("MaxUnpool", [V, I], {"kernel_shape": [2, 2], "strides": [2, 2]}, opset=9, id="opset9"),
    Case("MaxUnpool", [V, I], {"kernel_shape": [2, 2], "strides": [2, 2]}, opset=11, id="opset11"),
    Case("MaxUnpool", [V3, I3], {"kernel_shape": [3, 3], "strides": [2, 2]}, opset=11, id="k3s2"),
    Case("MaxUnpool", [V3, I3, np.array([1, 2, 8, 8], np.int64)], {"kernel_shape": [3, 3], "strides": [2, 2]},
         opset=11, const_inputs=(2,), id="output-shape"),
    Case("MaxUnpool", [V16, I16], {"kernel_shape": [2, 2], "strides": [2, 2]}, opset=22, id="fp16-22"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_max_unpool(case: Case) -> None:
    check(case)
