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
BOOL_MASK[:, 0] = True  # no fully masked rows (the spec zeroes them; see the module limits)
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


def test_nonpad_kv_seqlen_is_unsupported() -> None:
    import onnx
    from onnx import TensorProto as T
    from onnx import helper

    from pipeline.errors import UnsupportedOpError
    from pipeline.lowering import lower

    shape = [B, HQ, S, E]
    node = helper.make_node("Attention", ["q", "k", "v", "", "", "", "n"], ["y"])
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(n, T.FLOAT, shape) for n in "qkv"] + [helper.make_tensor_value_info("n", T.INT64, [B])],
        [helper.make_tensor_value_info("y", T.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 24)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    with pytest.raises(UnsupportedOpError, match="nonpad_kv_seqlen"):
        lower(model, verify=False)
