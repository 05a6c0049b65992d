"""LinearAttention: onnx's reference evaluator (onnxruntime 1.32 has no kernel for it) vs lower +
our executor, every update rule, grouped heads, with and without past state."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from pipeline.lowering import lower
from tests.lowering.support import rand, tolerance_for

B, HQ, HKV, DK, DV = 2, 4, 2, 3, 5


def _model(rule: str, t: int, past: bool, decay_width: int, beta_width: int, dtype: type
           ) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    vi = helper.make_tensor_value_info
    feeds = {
        "q": rand(B, t, HQ * DK, dtype=dtype, low=-1, high=1, seed=1),
        "k": rand(B, t, HKV * DK, dtype=dtype, low=-1, high=1, seed=2),
        "v": rand(B, t, HKV * DV, dtype=dtype, low=-1, high=1, seed=3),
    }
    names = ["q", "k", "v", "", "", ""]
    if past:
        feeds["s"], names[3] = rand(B, HKV, DK, DV, dtype=dtype, low=-1, high=1, seed=4), "s"
    if rule in ("gated", "gated_delta"):
        # log-space decays in (-1, 0): exp keeps the state bounded, as trained gates do.
        feeds["g"], names[4] = rand(B, t, decay_width, dtype=dtype, low=-1, high=-0.01, seed=5), "g"
    if rule in ("delta", "gated_delta"):
        feeds["beta"], names[5] = rand(B, t, beta_width, dtype=dtype, low=0, high=1, seed=6), "beta"
    while not names[-1]:
        names.pop()
    node = helper.make_node("LinearAttention", names, ["o", "state"], update_rule=rule, q_num_heads=HQ,
                            kv_num_heads=HKV)
    inputs = [vi(n, elem, list(a.shape)) for n, a in feeds.items()]
    outputs = [vi("o", elem, [B, t, HQ * DV]), vi("state", elem, [B, HKV, DK, DV])]
    model = helper.make_model(helper.make_graph([node], "g", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 27)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    return model, feeds


@pytest.mark.parametrize("rule, t, past, decay_width, beta_width, dtype", [
    ("linear", 4, False, 0, 0, np.float32),
    ("linear", 1, True, 0, 0, np.float32),
    ("gated", 3, True, HKV, 0, np.float32),
    ("gated", 3, False, HKV * DK, 0, np.float32),
    ("delta", 3, True, 0, HKV, np.float32),
    ("gated_delta", 5, True, HKV, 1, np.float32),
    ("gated_delta", 1, True, HKV * DK, HKV, np.float32),
    ("gated_delta", 3, True, HKV, HKV, np.float16),
    ("gated_delta", 4, False, HKV * DK, HKV, np.float16),  # no past: the state starts in fp32
])
def test_linear_attention(rule: str, t: int, past: bool, decay_width: int, beta_width: int, dtype: type) -> None:
    model, feeds = _model(rule, t, past, decay_width, beta_width, dtype)
    expected = dict(zip(["o", "state"], ReferenceEvaluator(model).run(None, feeds)))
    actual = lower(model, target="iOS16", verify=False).predict(feeds)
    for name, exp in expected.items():
        atol, rtol = tolerance_for(exp.dtype)
        assert actual[name].dtype == exp.dtype
        np.testing.assert_allclose(actual[name], exp, atol=atol, rtol=rtol, err_msg=name)
