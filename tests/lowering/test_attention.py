"""Lowering of Attention and RotaryEmbedding (opset 23), checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lowering.support import Case, check, rand

F16 = np.float16
B, HQ, HKV, S, L, E = 2, 4, 2, 3, 5, 8


def qkv(hq: int = HQ, hkv: int = HQ, s: int = S, length: int = L, e: int = E, dtype: type = np.float32) -> list[np.ndarray]:
    return [rand(B, hq, s, e, dtype=dtype, seed=1), rand(B, hkv, length, e, dtype=dtype, seed=2),
            rand(B, hkv, length, e, dtype=dtype, seed=3)]


def qkv3(hq: int = HQ, hkv: int = HQ) -> list[np.ndarray]:
    return [rand(B, S, hq * E, seed=4), rand(B, L, hkv * E, seed=5), rand(B, L, hkv * E, seed=6)]


BOOL_MASK = rand(S, L, dtype=np.bool_, seed=7)
BOOL_MASK[:, 0] = True  # no fully masked rows here (those are the REFERENCE cases below)
FLOAT_MASK = rand(B, 1, S, L, seed=8)
PAST = [rand(B, HQ, 2, E, seed=9), rand(B, HQ, 2, E, seed=10)]

ATTENTION = [
    Case("Attention", qkv(), opset=23, id="attn-4d"),
    Case("Attention", qkv(s=L), {"is_causal": 1}, opset=23, target="iOS15", id="attn-ios15"),
    Case("Attention", qkv(dtype=F16), opset=23, id="attn-4d-fp16"),
    Case("Attention", qkv() + [BOOL_MASK], opset=23, id="attn-bool-mask"),
    Case("Attention", qkv() + [FLOAT_MASK], {"scale": 0.3}, opset=23, id="attn-float-mask-scale"),
    Case("Attention", qkv(s=L), {"is_causal": 1}, opset=23, id="attn-causal"),
    Case("Attention", qkv() + [BOOL_MASK], opset=23, const_inputs=(3,), id="attn-const-mask"),
    Case("Attention", qkv(hkv=HKV), opset=23, id="attn-gqa"),
    Case("Attention", qkv3(), {"q_num_heads": HQ, "kv_num_heads": HQ}, opset=23, id="attn-3d"),
    Case("Attention", qkv3(hkv=HKV), {"q_num_heads": HQ, "kv_num_heads": HKV}, opset=23, id="attn-3d-gqa"),
    # New keys as many as new queries (decoding with a KV cache): the spec (offset = past length)
    # and onnxruntime (offset = total keys - queries) agree only there.
    Case("Attention", qkv(s=L) + [None] + PAST, {"is_causal": 1}, opset=23, n_outputs=3, id="attn-past-causal"),
    Case("Attention", qkv() + [None] + PAST, opset=23, n_outputs=3, id="attn-past"),
    Case("Attention", qkv(), {"softcap": 2.0}, opset=23, id="attn-softcap"),
    Case("Attention", qkv(s=L) + [None, None, None], {"is_causal": 1, "qk_matmul_output_mode": 0}, opset=23,
         n_outputs=4, id="attn-qk-output"),
    Case("Attention", qkv() + [FLOAT_MASK, None, None], {"softcap": 1.5, "qk_matmul_output_mode": 2}, opset=23,
         n_outputs=4, id="attn-qk-output-mode2"),
    Case("Attention", qkv(dtype=F16), {"softmax_precision": 1}, opset=23, id="attn-softmax-fp32"),
    # iOS18: MIL scaled_dot_product_attention.
    Case("Attention", qkv(), opset=23, target="iOS18", id="attn-sdpa"),
    Case("Attention", qkv(s=L) + [BOOL_MASK.repeat(2, axis=0)[:L]], {"is_causal": 1}, opset=23, target="iOS18",
         id="attn-sdpa-causal-bool"),
    Case("Attention", qkv() + [FLOAT_MASK], {"scale": 0.3}, opset=23, target="iOS18", id="attn-sdpa-scale-float"),
    Case("Attention", qkv3(hkv=HKV), {"q_num_heads": HQ, "kv_num_heads": HKV}, opset=23, target="iOS18",
         id="attn-sdpa-3d-gqa"),
]

D = 8
COS = np.cos(rand(16, D // 2, low=0, high=3, seed=11))
SIN = np.sin(rand(16, D // 2, low=0, high=3, seed=11))
POS = np.array([[0, 1, 2], [5, 6, 7]], np.int64)

ROTARY = [
    Case("RotaryEmbedding", [rand(B, HQ, S, D), COS, SIN, POS], opset=23, const_inputs=(1, 2), id="rope-4d"),
    Case("RotaryEmbedding", [rand(B, HQ, S, D), COS, SIN, POS], {"interleaved": 1}, opset=23,
         id="rope-interleaved-run-time"),
    Case("RotaryEmbedding", [rand(B, S, HQ * D), COS, SIN, POS], {"num_heads": HQ}, opset=23,
         const_inputs=(1, 2, 3), id="rope-3d-const"),
    Case("RotaryEmbedding", [rand(B, HQ, S, D), COS[:, :2], SIN[:, :2], POS], {"rotary_embedding_dim": 4},
         opset=23, const_inputs=(1, 2), id="rope-partial"),
    Case("RotaryEmbedding", [rand(B, HQ, S, D), COS[POS], SIN[POS]], {"interleaved": 1}, opset=23,
         id="rope-no-position-ids"),
    Case("RotaryEmbedding", [rand(B, HQ, S, D, dtype=F16), COS.astype(F16), SIN.astype(F16), POS], opset=23,
         const_inputs=(1, 2), id="rope-fp16"),
]


@pytest.mark.parametrize("case", ATTENTION + ROTARY, ids=str)
def test_attention(case: Case) -> None:
    check(case)


def _reference_case(inputs: list[np.ndarray | None], attrs: dict, opset: int, const: tuple[int, ...] = (),
                    n_outputs: int = 1) -> tuple:
    """A one-node Attention model checked by onnx, its feeds, and onnx's reference outputs.

    nonpad_kv_seqlen and the fully-masked-row rule are newer than onnxruntime's kernels, so
    these cases use onnx.reference as the expected side."""
    import onnx
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    names, graph_inputs, inits, feeds = [], [], [], {}
    for i, arr in enumerate(inputs):
        if arr is None:
            names.append("")
            continue
        names.append(f"in{i}")
        if i in const:
            inits.append(onnx.numpy_helper.from_array(arr, f"in{i}"))
        else:
            graph_inputs.append(helper.make_tensor_value_info(f"in{i}", helper.np_dtype_to_tensor_dtype(arr.dtype), arr.shape))
            feeds[f"in{i}"] = arr
    outs = [f"out{i}" for i in range(n_outputs)]
    node = helper.make_node("Attention", names, outs, **attrs)
    probe = helper.make_model(helper.make_graph([node], "g", graph_inputs, [helper.make_empty_tensor_value_info(o) for o in outs], inits),
                              opset_imports=[helper.make_opsetid("", opset)])
    probe.ir_version = 10
    expected = ReferenceEvaluator(probe).run(None, feeds)
    typed = [helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(e.dtype), e.shape) for o, e in zip(outs, expected)]
    model = helper.make_model(helper.make_graph([node], "g", graph_inputs, typed, inits), opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    return model, feeds, dict(zip(outs, expected))


NONPAD = np.array([3, 5], np.int64)
ROW_MASKED = BOOL_MASK.copy()
ROW_MASKED[1, :] = False  # query row 1 attends no key: the spec gives it a zero row
FLOAT_ROW_MASKED = np.where(ROW_MASKED, 0.5, -np.inf).astype(np.float32)

REFERENCE = [
    (qkv(s=2) + [None, None, None, NONPAD], {"is_causal": 1}, 24, (), "nonpad-causal-run-time"),
    (qkv(s=2) + [None, None, None, NONPAD], {"is_causal": 1}, 24, (6,), "nonpad-causal-const"),
    (qkv() + [BOOL_MASK, None, None, NONPAD], {}, 24, (), "nonpad-bool-mask"),
    (qkv() + [FLOAT_MASK, None, None, NONPAD], {"is_causal": 1}, 24, (), "nonpad-float-mask-causal"),
    (qkv(hkv=HKV, dtype=F16) + [None, None, None, NONPAD], {"is_causal": 1}, 24, (), "nonpad-gqa-fp16"),
    (qkv(s=2) + [None, None, None, NONPAD], {"left_window_size": 1, "right_window_size": 0}, 25, (), "nonpad-window"),
    (qkv() + [ROW_MASKED], {}, 24, (), "masked-row-bool-run-time"),
    (qkv() + [ROW_MASKED], {}, 24, (3,), "masked-row-bool-const"),
    (qkv() + [FLOAT_ROW_MASKED], {}, 24, (), "masked-row-float-run-time"),
    (qkv() + [ROW_MASKED, None, None], {"qk_matmul_output_mode": 3}, 24, (), "masked-row-mode3"),
]


@pytest.mark.parametrize("target", ["iOS16", "iOS18"])
@pytest.mark.parametrize("inputs,attrs,opset,const,case_id", REFERENCE, ids=[r[-1] for r in REFERENCE])
def test_attention_against_onnx_reference(inputs: list, attrs: dict, opset: int, const: tuple, case_id: str,
                                          target: str) -> None:
    from pipeline.lowering import lower
    from pipeline.parity import compare
    from tests.lowering.support import tolerance_for

    n_outputs = 4 if attrs.get("qk_matmul_output_mode") is not None else 1
    model, feeds, expected = _reference_case(inputs, attrs, opset, const, n_outputs)
    actual = lower(model, target=target, verify=False).predict(feeds)
    for name, exp in expected.items():
        atol, rtol = tolerance_for(exp.dtype)
        assert not np.isnan(actual[name]).any(), f"{case_id}: NaN in {name}"
        report = compare({name: actual[name]}, {name: exp}, atol=atol, rtol=rtol)
        assert report.ok, f"{case_id}:\n{report.summary()}"
