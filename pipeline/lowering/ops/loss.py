"""Losses: NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss.

Both pick, for every sample position, the class entry named by the target along axis 1
(``gather_along_axis``), weight it by the class weight (``gather``) and zero it where the target
equals ``ignore_index``, then reduce (none / sum / weighted mean).  Only the MIL ops a given
attribute set needs are emitted: without weights or ignore_index the mean is one
``reduce_mean``.

Spec changes read: NegativeLogLikelihoodLoss 12 (introduced), 13 (bfloat16... types), 22 (types);
SoftmaxCrossEntropyLoss 12 (introduced), 13 (types).  ``mean`` divides by the sum of the weights
of the non-ignored targets (their count when there are no weights).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.ops.indexing import static_dim, static_shape
from pipeline.lowering.registry import composite_op

log = logging.getLogger(__name__)

_REDUCTIONS = ("none", "sum", "mean")


def _nll(ctx: LowerContext, node: Node, logp: Any, target: Any, weight: Any | None) -> Any:
    """loss[n, d...] = -logp[n, t, d...] * w[t] (0 where t == ignore_index), then reduced."""
    mb = ctx.mb
    reduction = str(node.attrs.get("reduction", "mean"))
    if reduction not in _REDUCTIONS:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: reduction='{reduction}' is not one of {_REDUCTIONS}; fix the model"
        )
    ignore = node.attrs.get("ignore_index") if node.has_attr("ignore_index") else None
    target = ctx.cast(target, np.int32)
    keep = None
    if ignore is not None:
        is_ignored = mb.equal(x=target, y=np.int32(ignore))
        # ignore_index may lie outside [0, C) (-100 is common): gather a safe class instead.
        target = mb.select(cond=is_ignored, a=np.int32(0), b=target)
        keep = ctx.cast(mb.logical_not(x=is_ignored), ctx.np_dtype(logp))
    picked = mb.gather_along_axis(x=logp, indices=mb.expand_dims(x=target, axes=[1]), axis=1)
    picked = mb.squeeze(x=picked, axes=[1])
    w = mb.gather(x=weight, indices=target, axis=0) if weight is not None else None
    if keep is not None:
        w = keep if w is None else mb.mul(x=w, y=keep)
    minus_one = ctx.scalar_like(logp, -1)
    if w is None:
        if reduction == "none":
            return mb.mul(x=picked, y=minus_one)
        total = mb.reduce_sum(x=picked) if reduction == "sum" else mb.reduce_mean(x=picked)
        return mb.mul(x=total, y=minus_one)
    weighted = mb.mul(x=picked, y=mb.mul(x=w, y=minus_one))
    if reduction == "none":
        return weighted
    total = mb.reduce_sum(x=weighted)
    if reduction == "sum":
        return total
    return mb.real_div(x=total, y=mb.reduce_sum(x=w))


#: Core ML tensors have rank <= 5; the picked-class step adds an axis to the target.
_MAX_RANK = 5


def _flatten_spatial(ctx: LowerContext, scores: Any, target: Any) -> tuple[Any, Any, tuple[int, ...] | None]:
    """(N, C, d1..dk) / (N, d1..dk) as (N, C, D) / (N, D) when rank > 4, with (N, d1..dk) to
    restore per-element losses; the loss is elementwise over the d axes, so this changes nothing."""
    if scores.rank <= _MAX_RANK - 1:
        return scores, target, None
    shape = static_shape(target)
    if shape is None:
        raise UnsupportedOpError(
            "lower: loss over rank > 4 inputs with run-time dimensions cannot be flattened to "
            "Core ML's rank-5 limit; fix the input shape with --input"
        )
    n, c = int(shape[0]), static_dim(scores, 1)
    scores = ctx.mb.reshape(x=scores, shape=np.array([n, c if c is not None else -1, -1], np.int32))
    target = ctx.mb.reshape(x=target, shape=np.array([n, -1], np.int32))
    return scores, target, tuple(int(d) for d in shape)


def _restore(ctx: LowerContext, loss: Any, shape: tuple[int, ...] | None) -> Any:
    if shape is None or loss.rank == 0:
        return loss
    return ctx.mb.reshape(x=loss, shape=np.array(shape, np.int32))


@composite_op("NegativeLogLikelihoodLoss", since=12)
def negative_log_likelihood_loss(ctx: LowerContext, node: Node) -> Any:
    """loss = -input[n, target[n, d], d] * weight[target], reduced by none / sum / weighted mean.

    MIL: gather_along_axis + squeeze (+ gather of the weights, equal/select/logical_not/cast for
    ignore_index), mul by -1, reduce_sum / reduce_mean (+ real_div by the weight sum).  No native
    MIL op exists; gathers and reductions are exact, so the composite is as precise as the sum.
    Limits: per-element losses and inputs of rank > 5 exceed Core ML's rank limit (inputs of
    rank 6-7 with a scalar reduction are flattened and work).
    """
    scores, target, shape = _flatten_spatial(ctx, node.input(0), node.input(1))
    return _restore(ctx, _nll(ctx, node, scores, target, node.input(2)), shape)


@composite_op("SoftmaxCrossEntropyLoss", since=12)
def softmax_cross_entropy_loss(ctx: LowerContext, node: Node) -> Any:
    """log_prob = log_softmax(scores, axis=1); loss = NLL(log_prob, labels, weights).

    MIL: reduce_log_sum_exp + sub (log-softmax without forming softmax, so no log(0) underflow:
    MIL has no log_softmax op), then the NLL composite above.
    Limits: as NegativeLogLikelihoodLoss; a log_prob output of rank > 5 cannot exist in Core ML.
    """
    mb = ctx.mb
    full_shape = static_shape(node.input(0))
    scores, target, shape = _flatten_spatial(ctx, node.input(0), node.input(1))
    log_prob = mb.sub(x=scores, y=mb.reduce_log_sum_exp(x=scores, axes=[1], keep_dims=True))
    loss = _restore(ctx, _nll(ctx, node, log_prob, target, node.input(2)), shape)
    if len(node.output_names) > 1 and node.output_names[1]:
        if shape is not None and full_shape is not None:
            log_prob = mb.reshape(x=log_prob, shape=np.array(full_shape, np.int32))
        return loss, log_prob
    return loss
