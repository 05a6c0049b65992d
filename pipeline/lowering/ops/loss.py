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


@composite_op("NegativeLogLikelihoodLoss", since=12)
def negative_log_likelihood_loss(ctx: LowerContext, node: Node) -> Any:
    """loss = -input[n, target[n, d], d] * weight[target], reduced by none / sum / weighted mean.

    MIL: gather_along_axis + squeeze (+ gather of the weights, equal/select/logical_not/cast for
    ignore_index), mul by -1, reduce_sum / reduce_mean (+ real_div by the weight sum).  No native
    MIL op exists; gathers and reductions are exact, so the composite is as precise as the sum.
    Limits: none.
    """
    return _nll(ctx, node, node.input(0), node.input(1), node.input(2))


@composite_op("SoftmaxCrossEntropyLoss", since=12)
def softmax_cross_entropy_loss(ctx: LowerContext, node: Node) -> Any:
    """log_prob = log_softmax(scores, axis=1); loss = NLL(log_prob, labels, weights).

    MIL: reduce_log_sum_exp + sub (log-softmax without forming softmax, so no log(0) underflow:
    MIL has no log_softmax op), then the NLL composite above.
    Limits: none.
    """
    mb = ctx.mb
    scores = node.input(0)
    log_prob = mb.sub(x=scores, y=mb.reduce_log_sum_exp(x=scores, axes=[1], keep_dims=True))
    loss = _nll(ctx, node, log_prob, node.input(1), node.input(2))
    if len(node.output_names) > 1 and node.output_names[1]:
        return loss, log_prob
    return loss
