"""Recurrent-state and cache ops of decoder models: TensorScatter, CausalConvWithState.

Both are functional updates of a fixed-size buffer (a KV cache, a convolution's carry), which
MIL expresses with its native data-movement ops: ``concat``/``slice_by_index`` for writes at
known positions, ``scatter_along_axis`` for per-sample write positions, and a grouped ``conv``
for the depthwise causal convolution.  (Core ML's stateful models keep such buffers in MIL
``state`` values; this lowering keeps them as ordinary inputs and outputs, as the ONNX graph does.)

Spec read: TensorScatter 24 (introduced: axis default -2, mode linear | circular, optional
write_indices per batch entry); CausalConvWithState 27 (introduced: depthwise causal conv over
concat(past_state, input), activation none | silu | swish, present_state = last k-1 positions).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.ops.indexing import normalize_axis, static_dim, static_shape
from pipeline.lowering.registry import composite_op

log = logging.getLogger(__name__)


def _slice_axis(ctx: LowerContext, x: Any, axis: int, begin: int, end: int | None) -> Any:
    """x[..., begin:end, ...] along ``axis`` (end None = to the end; begin may be negative)."""
    rank = x.rank
    begins, ends = [0] * rank, [0] * rank
    begin_mask, end_mask = [True] * rank, [True] * rank
    begins[axis], begin_mask[axis] = begin, False
    if end is not None:
        ends[axis], end_mask[axis] = end, False
    return ctx.mb.slice_by_index(x=x, begin=begins, end=ends, begin_mask=begin_mask, end_mask=end_mask)


@composite_op("TensorScatter", since=24)
def tensor_scatter(ctx: LowerContext, node: Node) -> Any:
    """present = past with update written at [w_b, w_b + s) along axis (mod S_max if circular).

    MIL: without write_indices, concat(update, past[s:]) (2 ops, or the update itself when it
    fills the cache).  With them: reshape + add of a constant arange give each update row's
    position (+ mod when circular), broadcast to the update's shape by an add, then one
    scatter_along_axis (mode update).
    Limits: axis must not be the batch axis 0; the update's shape and the cache's axis length
    must be static; in linear mode positions past the end are undefined in ONNX and dropped
    here only if Core ML drops them (keep w_b + s <= S_max).
    """
    mb = ctx.mb
    past, update, write = node.input(0), node.input(1), node.input(2)
    axis = normalize_axis(node, int(node.attrs.get("axis", -2)), past.rank)
    mode = str(node.attrs.get("mode", "linear"))
    if mode not in ("linear", "circular"):
        raise UnsupportedOpError(f"lower: {node.describe()}: mode='{mode}' must be linear or circular; fix the model")
    if axis == 0:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: axis 0 is the batch axis write_indices are indexed by; fix the model"
        )
    s_max, s = static_dim(past, axis), static_dim(update, axis)
    if s_max is None or s is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: the sequence lengths of the cache and update must be static "
            "(fix them with --input)"
        )
    write_val = node.const_input(2) if write is not None else np.zeros(1, np.int64)
    if write_val is not None and not np.asarray(write_val).any():
        # Prefill: every sample writes at 0, so the result is a concatenation.
        if s == s_max:
            return update
        return mb.concat(values=[update, _slice_axis(ctx, past, axis, s, None)], axis=axis)
    shape = static_shape(update)
    if shape is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: per-sample write_indices need the update's shape static "
            "(fix it with --input)"
        )
    rank = past.rank
    starts = mb.reshape(x=ctx.cast(write, np.int32), shape=np.array([-1] + [1] * (rank - 1), np.int32))
    offsets = np.arange(s, dtype=np.int32).reshape([s if i == axis else 1 for i in range(rank)])
    positions = mb.add(x=starts, y=offsets)
    if mode == "circular":
        positions = mb.mod(x=positions, y=np.int32(s_max))
    positions = mb.add(x=positions, y=ctx.const(np.zeros(shape, np.int32)))
    return mb.scatter_along_axis(data=past, indices=positions, updates=update, axis=axis, mode="update")


_ACTIVATIONS = ("none", "silu", "swish")


@composite_op("CausalConvWithState", since=27)
def causal_conv_with_state(ctx: LowerContext, node: Node) -> Any:
    """padded = concat(past or zeros(k-1), x); y = act(depthwise_conv(padded, w) + b);
    present = padded[..., -(k-1):].

    MIL: concat (pad when there is no past state), conv with groups = channels and valid
    padding (the native op, Neural Engine), silu for the fused activation, slice_by_index for
    the new state: 2 to 4 ops.
    Limits: the kernel length k (weight's last dim) must be static; k = 1 has an empty state,
    which Core ML cannot hold, so present_state is then unsupported.
    """
    mb = ctx.mb
    x, weight, bias, past = node.input(0), node.input(1), node.input(2), node.input(3)
    activation = str(node.attrs.get("activation", "none"))
    if activation not in _ACTIVATIONS:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: activation='{activation}' is not one of {_ACTIVATIONS}; fix the model"
        )
    k = static_dim(weight, 2)
    channels = static_dim(weight, 0)
    if k is None or channels is None:
        raise UnsupportedOpError(f"lower: {node.describe()}: the weight's shape must be static; fix the model")
    wants_state = len(node.output_names) > 1 and bool(node.output_names[1])
    if k == 1 and wants_state:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: kernel length 1 leaves an empty present_state, which Core ML "
            "cannot represent; drop that output"
        )
    if k == 1:
        padded = x
    elif past is not None:
        padded = mb.concat(values=[past, x], axis=2)
    else:
        padded = mb.pad(x=x, pad=np.array([0, 0, 0, 0, k - 1, 0], np.int32), mode="constant",
                        constant_val=ctx.scalar_like(x, 0))
    kwargs: dict[str, Any] = {"x": padded, "weight": weight, "groups": channels, "pad_type": "valid",
                              "strides": [1], "dilations": [1]}
    if bias is not None:
        kwargs["bias"] = bias
    y = mb.conv(**kwargs)
    if activation != "none":
        y = mb.silu(x=y)
    if not wants_state:
        return y
    return y, _slice_axis(ctx, padded, 2, -(k - 1), None)
