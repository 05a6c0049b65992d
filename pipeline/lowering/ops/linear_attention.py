"""Linear attention with a recurrent state: LinearAttention (update rules linear, gated, delta,
gated_delta, with grouped-query heads).

MIL has no linear-attention op.  The composite runs the spec's recurrence over the (static)
sequence length, unrolled: each token costs 2 to 7 elementwise ops on the (B, H_kv, d_k, d_v)
state, following the spec's order of operations exactly (decay, delta correction, rank-1
update).  The states after every token are concatenated once and read by the queries in a
single batched ``matmul``, so the query side costs no per-token op.  Decode (T = 1) is a handful
of ops; long prefills grow linearly in op count, and a warning says so past 64 tokens.

Spec read: LinearAttention 27 (introduced: 3-D packed q/k/v (B, T, H*D), optional past_state
(B, H_kv, d_k, d_v), decay (B, T, H_kv or H_kv*d_k, log-space), beta (B, T, H_kv or 1),
scale 0 meaning 1/sqrt(d_k); o_t reads the state after token t's update).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.ops.indexing import static_shape
from pipeline.lowering.registry import composite_op

log = logging.getLogger(__name__)

_RULES = ("linear", "gated", "delta", "gated_delta")
#: Tokens beyond which the unrolled recurrence earns a warning about its op count.
_LONG_SEQUENCE = 64


def _time_major(ctx: LowerContext, x: Any, b: int, t: int, heads: int, shape_tail: tuple[int, int]) -> Any:
    """(B, T, heads*D) -> (T, B, heads, *shape_tail), the token axis first for one split."""
    mb = ctx.mb
    x = mb.reshape(x=x, shape=np.array([b, t, heads, *shape_tail], np.int32))
    return mb.transpose(x=x, perm=[1, 0, 2, 3, 4])


def _tokens(ctx: LowerContext, x: Any, t: int) -> list[Any]:
    """The T slices (1, ...) of a time-major tensor: one split op."""
    return [x] if t == 1 else list(ctx.mb.split(x=x, num_splits=t, axis=0))


@composite_op("LinearAttention", since=27)
def linear_attention(ctx: LowerContext, node: Node) -> Any:
    """S_t = exp(g_t) S_{t-1} + k_t (beta_t (v_t - exp(g_t) S_{t-1}^T k_t))^T (terms per rule);
    o_t = scale * q_t^T S_t.

    MIL: reshape/transpose/split of q, k, v, decay (exp once), beta; per token mul (decay),
    mul + reduce_sum + sub + mul (delta), mul + add (update); concat of the states, one matmul
    with the queries, mul by scale, transpose + reshape.
    fp16 inputs are computed in fp32 (casts in and out), as the spec's reference does.
    Limits: static shapes; op count grows with T (unrolled; no chunked form).
    """
    mb = ctx.mb
    query, key, value, past, decay, beta = (node.input(i) for i in range(6))
    rule = str(node.attrs.get("update_rule", "gated_delta"))
    if rule not in _RULES:
        raise UnsupportedOpError(f"lower: {node.describe()}: update_rule='{rule}' is not one of {_RULES}; fix the model")
    hq, hkv = int(node.attrs.get("q_num_heads", 0)), int(node.attrs.get("kv_num_heads", 0))
    if hq <= 0 or hkv <= 0 or hq % hkv:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: q_num_heads={hq} must be a positive multiple of kv_num_heads={hkv}; fix the model"
        )
    gating, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    if gating != (decay is not None) or delta != (beta is not None):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: update_rule='{rule}' needs decay={gating} and beta={delta}; fix the model"
        )
    shapes = [static_shape(v) for v in (query, key, value)]
    if any(s is None for s in shapes):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: query/key/value have run-time dimensions; the unrolled "
            "recurrence needs static shapes (fix them with --input)"
        )
    (b, t, qd), (_, _, kd), (_, _, vd) = shapes  # type: ignore[misc]
    dk, dv, group = qd // hq, vd // hkv, hq // hkv
    if kd != hkv * dk:
        raise UnsupportedOpError(f"lower: {node.describe()}: key width {kd} is not kv_num_heads * d_k; fix the model")
    if t > _LONG_SEQUENCE:
        ctx.warn(f"lower: {node.describe()}: LinearAttention over {t} tokens unrolls to ~{7 * t} MIL ops")
    scale = float(node.attrs.get("scale", 0.0)) or 1.0 / math.sqrt(dk)
    # The recurrence accumulates over T tokens: fp16 inputs run it in fp32, as the spec's
    # reference does, and the outputs are cast back.
    out_dtype = ctx.np_dtype(query)
    state_dtype = ctx.np_dtype(past) if past is not None else out_dtype
    query, key, value, past, decay, beta = (
        None if v is None else ctx.cast(v, np.float32) for v in (query, key, value, past, decay, beta)
    )

    ks = _tokens(ctx, _time_major(ctx, key, b, t, hkv, (dk, 1)), t)  # (1, B, H, dk, 1)
    vs = _tokens(ctx, _time_major(ctx, value, b, t, hkv, (1, dv)), t)  # (1, B, H, 1, dv)
    decays: list[Any] = []
    if gating:
        width = static_shape(decay)[-1]  # type: ignore[index]
        per_key = width == hkv * dk
        if not per_key and width != hkv:
            raise UnsupportedOpError(
                f"lower: {node.describe()}: decay width {width} must be kv_num_heads or kv_num_heads * d_k; fix the model"
            )
        decays = _tokens(ctx, mb.exp(x=_time_major(ctx, decay, b, t, hkv, (dk if per_key else 1, 1))), t)
    betas: list[Any] = []
    if delta:
        width = static_shape(beta)[-1]  # type: ignore[index]
        betas = _tokens(ctx, _time_major(ctx, beta, b, t, width, (1, 1)), t)  # (1, B, H or 1, 1, 1)

    state = None if past is None else mb.expand_dims(x=past, axes=[0])  # (1, B, H, dk, dv)
    states = []
    for i in range(t):
        v_i = vs[i]
        if state is not None:
            if gating:
                state = mb.mul(x=state, y=decays[i])
            if delta:
                retrieved = mb.reduce_sum(x=mb.mul(x=state, y=ks[i]), axes=[3], keep_dims=True)
                v_i = mb.sub(x=v_i, y=retrieved)
        if delta:
            v_i = mb.mul(x=v_i, y=betas[i])
        update = mb.mul(x=ks[i], y=v_i)
        state = update if state is None else mb.add(x=state, y=update)
        states.append(state)

    all_states = states[0] if t == 1 else mb.concat(values=states, axis=0)  # (T, B, H, dk, dv)
    q = _time_major(ctx, query, b, t, hkv, (group, dk))  # (T, B, Hkv, group, dk)
    q = mb.mul(x=q, y=ctx.scalar_like(query, scale))
    out = mb.matmul(x=q, y=all_states)  # (T, B, Hkv, group, dv)
    out = mb.reshape(x=mb.transpose(x=out, perm=[1, 0, 2, 3, 4]), shape=np.array([b, t, hq * dv], np.int32))
    present = ctx.cast(mb.squeeze(x=state, axes=[0]), state_dtype)
    return ctx.cast(out, out_dtype), present
