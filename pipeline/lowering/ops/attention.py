"""Attention blocks: Attention (opset 23), RotaryEmbedding (opset 23).

Attention.  From iOS18 MIL has ``scaled_dot_product_attention`` (softmax(Q K^T / sqrt(E) +
mask) V), which Core ML fuses on the Neural Engine; it is used when the node's semantics fit it
(no softcap, no qk_matmul_output, default softmax precision); a non-default ``scale`` is folded
into Q by one multiply.  Otherwise the composite is the textbook one (mul, matmul, [tanh softcap],
mask, softmax, matmul): matmul and softmax are Neural Engine ops.  Masks (attention_masks.py)
known at conversion time fold into one constant; fully masked query rows give zero rows.

Spec changes read: Attention 23 (q/k/v 3-D or 4-D, attn_mask bool/float, past_key/past_value,
is_causal bottom-right aligned, scale, softcap, GQA, softmax_precision, qk_matmul_output_mode),
24 (nonpad_kv_seqlen), 25 (left/right_window_size); RotaryEmbedding 23.
Limits: 3-D inputs need static batch and
sequence sizes; GQA needs a static head count.  is_causal follows the spec (query i attends
key j <= i + past length); onnxruntime aligns to (total keys - queries) instead, which agrees
whenever the new keys are as many as the queries (KV-cache decoding).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from onnx import TensorProto

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.ops.attention_masks import apply_guard, apply_mask, build_mask
from pipeline.lowering.registry import composite_op

log = logging.getLogger(__name__)


def _static(node: Node, var: Any, what: str) -> list[int]:
    dims = list(var.shape)
    if not all(isinstance(d, (int, np.integer)) for d in dims):
        raise UnsupportedOpError(f"lower: {node.describe()}: {what} needs a static shape, got {dims}; fix the input shapes")
    return [int(d) for d in dims]


def _split_heads(ctx: LowerContext, node: Node, x: Any, heads: int, what: str) -> Any:
    """(B, S, H*D) -> (B, H, S, D)."""
    b, s, hidden = _static(node, x, what)
    if heads <= 0 or hidden % heads:
        raise UnsupportedOpError(f"lower: {node.describe()}: {what} hidden size {hidden} is not a multiple of {heads} heads")
    x = ctx.mb.reshape(x=x, shape=[b, s, heads, hidden // heads])
    return ctx.mb.transpose(x=x, perm=[0, 2, 1, 3])


def _repeat_heads(ctx: LowerContext, x: Any, groups: int) -> Any:
    """(B, H, L, D) -> (B, H*g, L, D) with each head repeated g times in place (h0, h0, h1, ...)."""
    b, h, length, d = (int(v) for v in x.shape)
    x = ctx.mb.tile(x=ctx.mb.expand_dims(x=x, axes=[2]), reps=[1, 1, groups, 1, 1])
    return ctx.mb.reshape(x=x, shape=[b, h * groups, length, d])


def _softmax_dtype(node: Node, dtype: np.dtype) -> np.dtype:
    precision = int(node.attrs.get("softmax_precision", 0) or 0)
    if precision in (0,):
        return dtype
    if precision in (TensorProto.FLOAT, TensorProto.DOUBLE):
        return np.dtype(np.float32)
    if precision == TensorProto.FLOAT16:
        return np.dtype(np.float16)
    raise UnsupportedOpError(f"lower: {node.describe()}: softmax_precision={precision} (bfloat16) has no Core ML type")


@composite_op("Attention", since=23)
def attention(ctx: LowerContext, node: Node) -> Any:
    """Y = softmax(softcap(scale * Q K^T) + mask) V, with KV cache concat, GQA and 3-D forms.

    MIL: scaled_dot_product_attention (iOS18+, when it fits) or mul, matmul, [mul, tanh, mul],
    select/add, softmax, matmul; reshape/transpose for 3-D inputs, concat for the cache,
    expand_dims/tile/reshape for GQA.  Limits: see the module docstring.
    """
    q, k, v = node.input(0), node.input(1), node.input(2)
    three_d = q.rank == 3
    if three_d:
        q = _split_heads(ctx, node, q, int(node.attrs.get("q_num_heads", 0) or 0), "Q")
        k = _split_heads(ctx, node, k, int(node.attrs.get("kv_num_heads", 0) or 0), "K")
        v = _split_heads(ctx, node, v, int(node.attrs.get("kv_num_heads", 0) or 0), "V")
    past = 0
    present_k, present_v = k, v
    if node.has_input(4):
        present_k = ctx.mb.concat(values=[node.input(4), k], axis=2)
        present_v = ctx.mb.concat(values=[node.input(5), v], axis=2)
        past = _static(node, node.input(4), "past_key")[2]
    dtype = ctx.np_dtype(q)
    q_len, head = _static(node, q, "Q")[2:]
    kv_len = _static(node, present_k, "K")[2]
    hq, hkv = int(q.shape[1]), int(present_k.shape[1])
    keys, values = present_k, present_v
    if hq != hkv:
        if hq % hkv:
            raise UnsupportedOpError(f"lower: {node.describe()}: {hq} query heads are not a multiple of {hkv} kv heads")
        keys, values = _repeat_heads(ctx, keys, hq // hkv), _repeat_heads(ctx, values, hq // hkv)
    scale = node.attrs.get("scale")
    scale = 1.0 / math.sqrt(head) if scale is None else float(scale)
    softcap = float(node.attrs.get("softcap", 0.0) or 0.0)
    masks = build_mask(ctx, node, dtype, q_len, kv_len, past)
    wants_qk = len(node.output_names) > 3 and bool(node.output_names[3])
    sm_dtype = _softmax_dtype(node, dtype)
    if ctx.target >= 18 and softcap == 0 and not wants_qk and sm_dtype == dtype:
        if not math.isclose(scale * math.sqrt(head), 1.0, rel_tol=1e-7):
            q = ctx.mb.mul(x=q, y=dtype.type(scale * math.sqrt(head)))
        kwargs: dict[str, Any] = {"query": q, "key": keys, "value": values}
        if masks.mask is not None:
            kwargs["attn_mask"] = masks.mask
        y = apply_guard(ctx, ctx.mb.scaled_dot_product_attention(**kwargs), masks.guard)
        qk = None
    else:
        scores = ctx.mb.matmul(x=ctx.mb.mul(x=q, y=dtype.type(scale)), y=keys, transpose_y=True)
        qk = scores  # mode 0: the scaled product
        if softcap > 0:
            scores = ctx.mb.mul(x=ctx.mb.tanh(x=ctx.mb.mul(x=scores, y=dtype.type(1.0 / softcap))), y=dtype.type(softcap))
        mode = int(node.attrs.get("qk_matmul_output_mode", 0) or 0)
        if mode == 1:
            qk = scores
        scores = apply_mask(ctx, scores, masks.mask)
        if mode == 2:
            qk = scores
        weights = apply_guard(ctx, ctx.mb.softmax(x=ctx.cast(scores, sm_dtype), axis=-1), masks.guard)
        weights = ctx.cast(weights, dtype)
        if mode == 3:
            qk = weights
        y = ctx.mb.matmul(x=weights, y=values)
    if three_d:
        b = int(y.shape[0])
        y = ctx.mb.reshape(x=ctx.mb.transpose(x=y, perm=[0, 2, 1, 3]), shape=[b, q_len, -1])
    return (y, present_k, present_v, qk)[: len(node.output_names)]


@composite_op("RotaryEmbedding", since=23)
def rotary_embedding(ctx: LowerContext, node: Node) -> Any:
    """Rotate pairs (x1, x2) of the first rotary_embedding_dim features by the cached angle:
    (x1 cos - x2 sin, x2 cos + x1 sin); pairs are halves, or neighbours when interleaved.

    MIL: gather of the caches by position_ids (folded when constant), slice_by_index, mul, sub,
    add, concat; reshape for 3-D input and for the interleaved layout.  4-D input keeps its
    (B, H, S, D) layout (the caches broadcast over H), so no transpose is emitted.
    Limits: 3-D input needs num_heads; static shapes.
    """
    x, cos, sin, pos = node.input(0), node.input(1), node.input(2), node.input(3)
    interleaved = bool(node.attrs.get("interleaved", 0))
    heads = int(node.attrs.get("num_heads", 0) or 0)
    dims = _static(node, x, "X")
    dtype = ctx.np_dtype(x)
    if x.rank == 3:
        if heads <= 0 or dims[2] % heads:
            raise UnsupportedOpError(f"lower: {node.describe()}: 3-D input needs num_heads dividing {dims[2]}; set the attribute")
        work = ctx.mb.reshape(x=x, shape=[dims[0], dims[1], heads, dims[2] // heads])
        head_axis = 2
    else:
        work = x
        head_axis = 1
    lead = [int(d) for d in work.shape[:3]]
    head = int(work.shape[3])
    rot = int(node.attrs.get("rotary_embedding_dim", 0) or 0) or head
    half = rot // 2
    cos, sin = (_cache(ctx, c, pos, half, dtype, head_axis) for c in (cos, sin))
    keep = [True, True, True]
    part = work if rot == head else ctx.mb.slice_by_index(x=work, begin=[0, 0, 0, 0], end=[0, 0, 0, rot], end_mask=keep + [False])
    if interleaved:
        pairs = ctx.mb.reshape(x=part, shape=lead + [half, 2])
        x1, x2 = (
            ctx.mb.slice_by_index(x=pairs, begin=[0, 0, 0, 0, i], end=[0, 0, 0, 0, i + 1],
                                  end_mask=keep + [True, False], squeeze_mask=[False] * 4 + [True])
            for i in (0, 1)
        )
    else:
        x1 = ctx.mb.slice_by_index(x=part, begin=[0, 0, 0, 0], end=[0, 0, 0, half], end_mask=keep + [False])
        x2 = ctx.mb.slice_by_index(x=part, begin=[0, 0, 0, half], end=[0, 0, 0, rot], end_mask=keep + [False])
    y1 = ctx.mb.sub(x=ctx.mb.mul(x=x1, y=cos), y=ctx.mb.mul(x=x2, y=sin))
    y2 = ctx.mb.add(x=ctx.mb.mul(x=x2, y=cos), y=ctx.mb.mul(x=x1, y=sin))
    if interleaved:
        rotated = ctx.mb.reshape(x=ctx.mb.stack(values=[y1, y2], axis=4), shape=lead + [rot])
    else:
        rotated = ctx.mb.concat(values=[y1, y2], axis=3)
    if rot != head:
        rest = ctx.mb.slice_by_index(x=work, begin=[0, 0, 0, rot], end=[0, 0, 0, head], end_mask=keep + [False])
        rotated = ctx.mb.concat(values=[rotated, rest], axis=3)
    return ctx.mb.reshape(x=rotated, shape=dims) if x.rank == 3 else rotated


def _cache(ctx: LowerContext, cache: Any, pos: Any, half: int, dtype: np.dtype, head_axis: int) -> Any:
    """cos/sin rows per (batch, position), with a unit head axis inserted at ``head_axis``:
    gathered by position_ids from a (max_pos, half) cache, or given as (B, S, half)."""
    cval, pval = ctx.value_of(cache), ctx.value_of(pos)
    if cval is not None and (pos is None or pval is not None):
        rows = cval if pval is None else cval[pval.astype(np.int64)]
        return ctx.const(np.expand_dims(rows[..., :half].astype(dtype), head_axis))
    if pos is None:
        rows = ctx.cast(cache, dtype)
    else:
        table = ctx.const(cval[:, :half].astype(dtype)) if cval is not None else ctx.cast(cache, dtype)
        rows = ctx.mb.gather(x=table, indices=ctx.cast(pos, np.int32), axis=0)
    return ctx.mb.expand_dims(x=rows, axes=[head_axis])
