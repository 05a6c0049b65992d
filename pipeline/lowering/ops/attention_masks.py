"""Masks of ONNX Attention (opsets 23-25): causal, sliding windows, attn_mask, nonpad_kv_seqlen.

Every constraint becomes an additive bias on the (B, H, q, kv) scores (0 keeps, -inf drops):

* is_causal: query i attends key j iff j <= i + offset (bottom-right aligned);
* left/right_window_size (25): offset + i - left <= j <= offset + i + right;
* attn_mask: bool (True keeps) or float (added), shorter than kv padded with False / -inf;
* nonpad_kv_seqlen (24): key j of batch b is kept iff j < nonpad_kv_seqlen[b].

offset is the past length (internal cache), nonpad_kv_seqlen[b] - q_len (external cache), or 0.
Parts known at conversion time fold into one numpy constant; run-time parts (a mask input, a
nonpad_kv_seqlen input) are built with MIL comparisons.  A query row whose bias is -inf
everywhere has no key to attend: the spec gives it zero probabilities (so a zero output row),
which :class:`AttentionMask` records as ``guard`` for the caller to apply after the softmax.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node

log = logging.getLogger(__name__)


@dataclasses.dataclass
class AttentionMask:
    """The combined mask: ``mask`` (MIL bool keep-mask or float bias, or None) and ``guard``
    (MIL bool, True on fully masked query rows, shape (..., q, 1), or None when none can be)."""

    mask: Any
    guard: Any


def _static_len(node: Node, var: Any, axis: int, what: str) -> int:
    dim = var.shape[axis]
    if not isinstance(dim, (int, np.integer)):
        raise UnsupportedOpError(f"lower: {node.describe()}: {what} needs a static size on axis {axis}; fix the input shapes")
    return int(dim)


def _window_attrs(node: Node) -> tuple[bool, int, int]:
    causal = bool(node.attrs.get("is_causal", 0))
    left = int(node.attrs.get("left_window_size", -1))
    right = int(node.attrs.get("right_window_size", -1))
    return causal, left, right


def _allowed_from_diff(diff: np.ndarray, causal: bool, left: int, right: int) -> np.ndarray:
    """Keep (q, kv) positions with diff = (offset + i) - j: causal diff >= 0, windows |diff| bounds."""
    allowed = np.ones(diff.shape, bool)
    if causal:
        allowed &= diff >= 0
    if left >= 0:
        allowed &= diff <= left
    if right >= 0:
        allowed &= -diff <= right
    return allowed


def _positional(ctx: LowerContext, node: Node, q_len: int, kv_len: int, past: int, nonpad: Any) -> tuple[np.ndarray | None, Any]:
    """(constant keep-mask or None, run-time keep-mask or None) from is_causal and the windows."""
    causal, left, right = _window_attrs(node)
    if not causal and left < 0 and right < 0:
        return None, None
    base = np.arange(q_len)[:, None] - np.arange(kv_len)[None, :]  # i - j, (q, kv)
    if nonpad is None:
        return _allowed_from_diff(base + past, causal, left, right), None
    nval = ctx.value_of(nonpad)
    if nval is not None:
        offsets = nval.astype(np.int64).reshape(-1, 1, 1, 1) - q_len
        return _allowed_from_diff(base[None, None] + offsets, causal, left, right), None
    off = ctx.mb.reshape(x=ctx.mb.sub(x=ctx.cast(nonpad, np.int32), y=np.int32(q_len)), shape=[-1, 1, 1, 1])
    diff = ctx.mb.add(x=ctx.const(base.astype(np.int32)), y=off)  # (B, 1, q, kv)
    parts = []
    if causal:
        parts.append(ctx.mb.greater_equal(x=diff, y=np.int32(0)))
    if left >= 0:
        parts.append(ctx.mb.less_equal(x=diff, y=np.int32(left)))
    if right >= 0:
        parts.append(ctx.mb.greater_equal(x=diff, y=np.int32(-right)))
    return None, _all(ctx, parts)


def _padding(ctx: LowerContext, nonpad: Any, kv_len: int) -> tuple[np.ndarray | None, Any]:
    """Keep key j of batch b iff j < nonpad_kv_seqlen[b]; shape (B, 1, 1, kv)."""
    if nonpad is None:
        return None, None
    keys = np.arange(kv_len)
    nval = ctx.value_of(nonpad)
    if nval is not None:
        return keys[None, None, None, :] < nval.astype(np.int64).reshape(-1, 1, 1, 1), None
    count = ctx.mb.reshape(x=ctx.cast(nonpad, np.int32), shape=[-1, 1, 1, 1])
    return None, ctx.mb.less(x=ctx.const(keys.astype(np.int32).reshape(1, 1, 1, -1)), y=count)


def _all(ctx: LowerContext, parts: list[Any]) -> Any:
    out = None
    for part in parts:
        out = part if out is None else ctx.mb.logical_and(x=out, y=part)
    return out


def _pad_mask(ctx: LowerContext, node: Node, mask: Any, kv_len: int) -> Any:
    """A mask shorter than the key length is padded with False / -inf (spec)."""
    short = kv_len - _static_len(node, mask, -1, "attn_mask")
    if short <= 0:
        return mask
    if not all(isinstance(d, (int, np.integer)) for d in mask.shape):
        raise UnsupportedOpError(f"lower: {node.describe()}: a short attn_mask needs a static shape; fix the input shapes")
    dims = [int(d) for d in mask.shape]
    dtype = ctx.np_dtype(mask)
    fill = np.zeros(dims[:-1] + [short], dtype) if dtype == np.bool_ else np.full(dims[:-1] + [short], -np.inf, dtype)
    val = ctx.value_of(mask)
    if val is not None:
        return ctx.const(np.concatenate([val, fill], axis=-1))
    return ctx.mb.concat(values=[mask, ctx.const(fill)], axis=-1)


def _as_bias(keep: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.where(keep, 0, -np.inf).astype(dtype)


def build_mask(ctx: LowerContext, node: Node, dtype: np.dtype, q_len: int, kv_len: int, past: int) -> AttentionMask:
    """The combined attention mask and fully-masked-row guard (see the module docstring)."""
    nonpad = node.input(6) if node.has_input(6) else None
    const_keep: list[np.ndarray] = []
    run_keep: list[Any] = []
    const_bias: np.ndarray | None = None
    run_bias = None
    for const_part, run_part in (_positional(ctx, node, q_len, kv_len, past, nonpad), _padding(ctx, nonpad, kv_len)):
        if const_part is not None:
            const_keep.append(const_part)
        if run_part is not None:
            run_keep.append(run_part)
    mask = node.input(3)
    if mask is not None:
        mdtype = ctx.np_dtype(mask)
        if mdtype != np.bool_ and mdtype.kind != "f":
            raise UnsupportedOpError(f"lower: {node.describe()}: an integer attn_mask is not bool or float; cast it first")
        mask = _pad_mask(ctx, node, mask, kv_len)
        mval = ctx.value_of(mask)
        if mval is not None and mval.dtype == np.bool_:
            const_keep.append(mval)
        elif mval is not None:
            const_bias = mval.astype(dtype)
        elif mdtype == np.bool_:
            run_keep.append(mask)
        else:
            run_bias = ctx.cast(mask, dtype)
    for keep in const_keep:
        const_bias = _as_bias(keep, dtype) if const_bias is None else const_bias + _as_bias(keep, dtype)
    if not run_keep and run_bias is None:
        if const_bias is None:
            return AttentionMask(None, None)
        masked = np.isneginf(const_bias.max(axis=-1, keepdims=True))
        guard = ctx.const(masked) if masked.any() else None
        return AttentionMask(_compact(ctx, const_bias), guard)
    keep_var = _all(ctx, run_keep)
    only_keep = run_bias is None and (const_bias is None or np.all((const_bias == 0) | np.isneginf(const_bias)))
    if only_keep:
        if const_bias is not None:
            keep_var = ctx.mb.logical_and(x=keep_var, y=ctx.const(np.isfinite(const_bias)))
        # A row is fully masked iff it keeps no key: max over kv of the 0/1 keep-mask is 0.
        kept = ctx.mb.reduce_max(x=ctx.cast(keep_var, np.int32), axes=[-1], keep_dims=True)
        return AttentionMask(keep_var, ctx.mb.equal(x=kept, y=np.int32(0)))
    total = run_bias
    if keep_var is not None:
        keep_bias = ctx.mb.select(cond=keep_var, a=dtype.type(0), b=dtype.type(-np.inf))
        total = keep_bias if total is None else ctx.mb.add(x=total, y=keep_bias)
    if const_bias is not None:
        total = ctx.mb.add(x=total, y=ctx.const(const_bias))
    row_max = ctx.mb.reduce_max(x=total, axes=[-1], keep_dims=True)
    return AttentionMask(total, ctx.mb.equal(x=row_max, y=dtype.type(-np.inf)))


def _compact(ctx: LowerContext, bias: np.ndarray) -> Any:
    """A constant bias as a bool keep-mask when it is only 0 / -inf, else as floats."""
    if np.all((bias == 0) | np.isneginf(bias)):
        return ctx.const(np.isfinite(bias))
    return ctx.const(bias)


def apply_mask(ctx: LowerContext, scores: Any, mask: Any) -> Any:
    """scores with the keep-mask (False -> -inf) or the float bias applied."""
    if mask is None:
        return scores
    if ctx.np_dtype(mask) == np.bool_:
        return ctx.mb.select(cond=mask, a=scores, b=ctx.np_dtype(scores).type(-np.inf))
    return ctx.mb.add(x=scores, y=mask)


def apply_guard(ctx: LowerContext, x: Any, guard: Any) -> Any:
    """x with the fully masked query rows set to zero (select, so a NaN row is replaced too)."""
    if guard is None:
        return x
    return ctx.mb.select(cond=guard, a=ctx.np_dtype(x).type(0), b=x)
