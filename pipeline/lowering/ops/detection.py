"""Detection ops: NonMaxSuppression (10, 11), MaxRoiPool (1).

Spec changes read: NonMaxSuppression 10 (boxes [B, N, 4], scores [B, C, N], optional
max_output_boxes_per_class / iou_threshold / score_threshold, center_point_box), 11 (same
semantics; only the optional inputs' documentation changed).  MaxRoiPool 1 (rois [R, 5] =
(batch, x1, y1, x2, y2), pooled_shape, spatial_scale).

ONNX NonMaxSuppression suppresses per (batch, class): a box is kept when its score is strictly
above score_threshold and its IoU with every higher-scored kept box is not strictly above
iou_threshold; ties in score take the lower box index first; touching or degenerate boxes never
suppress.  The output [num_selected, 3] (batch, class, box) is ordered by batch, class, then
selection order, and has a run-time length.

MaxRoiPool follows Caffe: ROI corners are scaled and rounded half away from zero, the ROI is
``end - start + 1`` pixels (at least 1), and bin ``i`` of ``P`` covers
``[floor(i * size / P), ceil((i + 1) * size / P))`` shifted by the start and clamped to the image;
an empty bin yields 0.
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

#: First iOS opset whose non_maximum_suppression has the [n, 4, B] layout and no count output.
NMS_CHANNEL_FIRST_FROM = 17

# (lo, hi) of each corner pair -> (center, center, size, size): center = lo/2 + hi/2 and
# size = hi - lo, both exact in IEEE arithmetic (halving is exact), so MIL sees the same box.
_LO_WEIGHTS = np.array([0.5, 0.5, -1.0, -1.0])
_HI_WEIGHTS = np.array([0.5, 0.5, 1.0, 1.0])


def _static_or_raise(node: Node, var: Any, axis: int, what: str) -> int:
    dim = static_dim(var, axis)
    if dim is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: the {what} dimension is not static; Core ML's NMS needs it "
            "at conversion time; export with a fixed batch size and class count"
        )
    return dim


def _center_size(ctx: LowerContext, node: Node, boxes: Any) -> Any:
    """Boxes as (center, center, size, size) in the corners' own axis order (IoU is symmetric)."""
    if int(node.attrs.get("center_point_box", 0)) == 1:
        return boxes
    if int(node.attrs.get("center_point_box", 0)) != 0:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: center_point_box={node.attrs['center_point_box']} is not "
            "0 or 1; fix the model"
        )
    mb = ctx.mb
    # Corners are any diagonal pair: [y1, x1, y2, x2] against its swap [y2, x2, y1, x1].
    swapped = mb.gather(x=boxes, indices=ctx.const(np.array([2, 3, 0, 1], np.int32)), axis=-1)
    lo = mb.minimum(x=boxes, y=swapped)
    hi = mb.maximum(x=boxes, y=swapped)
    return mb.add(
        x=mb.mul(x=lo, y=ctx.array_like(boxes, _LO_WEIGHTS)),
        y=mb.mul(x=hi, y=ctx.array_like(boxes, _HI_WEIGHTS)),
    )


def _and(ctx: LowerContext, masks: list[Any]) -> Any:
    out = masks[0]
    for mask in masks[1:]:
        out = ctx.mb.logical_and(x=out, y=mask)
    return out


@composite_op("NonMaxSuppression", since=10)
def non_max_suppression(ctx: LowerContext, node: Node) -> Any:
    """selected = greedy NMS per (batch, class): score > score_thr, IoU > iou_thr suppresses.

    MIL: the B*C (batch, class) problems become the batch of one non_maximum_suppression
    (boxes tiled over classes, scores reshaped; the boxes transposed from iOS17), whose padded
    result is compacted by non_zero over a validity mask and one gather_nd from a constant
    (batch, class) table concatenated with the selected box indices.  Corner boxes become
    center/size with gather, minimum, maximum, two mul and an add.  The score threshold is
    applied to the selected scores after NMS (MIL's own is documented as inclusive and Core ML
    returns the top box when none passes, both unlike ONNX); ONNX selects greedily by
    descending score, so this is exact.  A run-time max_output_boxes_per_class runs NMS with
    max_boxes = N and masks ranks >= k (greedy selection is prefix-stable).
    Limits: B and C static; N static unless max_output_boxes_per_class is constant;
    iou_threshold constant (MIL needs it at conversion time); -inf scores are dropped before
    iOS17 (MIL's threshold is -inf there); from iOS17 (no count output) padded indices are taken
    to be negative (-1, as in coremltools' reference of the iOS15 op); score ties are assumed to
    keep the lower box index first, as onnxruntime and our executor do.
    """
    mb = ctx.mb
    boxes, scores = node.input(0), node.input(1)
    if boxes.rank != 3 or scores.rank != 3:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: boxes must be [B, N, 4] and scores [B, C, N]; fix the model"
        )
    n_batch = _static_or_raise(node, scores, 0, "batch")
    n_class = _static_or_raise(node, scores, 1, "class")
    n_box = static_dim(boxes, 1) or static_dim(scores, 2)
    dtype = ctx.np_dtype(scores)

    k_const: int | None = None
    k_var = None
    k_val = node.const_input(2)
    if node.input(2) is None:
        k_const = 0  # ONNX: omitted means 0, no output.
    elif k_val is not None:
        k_const = int(k_val.reshape(-1)[0])
    else:
        k_var = node.input(2)
    if k_const is None and n_box is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: both the box count and max_output_boxes_per_class are "
            "only known at run time; Core ML's NMS needs one of them; fix the box count or the limit"
        )
    if k_const is not None:
        k_const = max(k_const, 0)
        max_boxes = max(min(k_const, n_box) if n_box is not None else k_const, 1)
    else:
        max_boxes = int(n_box)  # type: ignore[arg-type]

    iou_thr = 0.0
    if node.input(3) is not None:
        iou_val = node.const_input(3)
        if iou_val is None:
            raise UnsupportedOpError(
                f"lower: {node.describe()}: iou_threshold is computed at run time; Core ML's NMS "
                "needs a constant; fold it (onnxsim) or make it an initializer"
            )
        iou_thr = float(iou_val.reshape(-1)[0])
        if not 0.0 <= iou_thr <= 1.0:
            raise UnsupportedOpError(
                f"lower: {node.describe()}: iou_threshold {iou_thr} is outside the spec's [0, 1]; "
                "fix the model"
            )

    bc = n_batch * n_class
    cs = _center_size(ctx, node, boxes)
    channel_first = ctx.target >= NMS_CHANNEL_FIRST_FROM
    if n_class > 1:
        # Row b*C + c of the flattened batch holds batch b's boxes: [B, C*N, 4] -> [B*C, N, 4].
        cs = mb.reshape(x=mb.tile(x=cs, reps=[1, n_class, 1]), shape=[bc, -1, 4])
    if channel_first:
        cs = mb.transpose(x=cs, perm=[0, 2, 1])  # [B*C, 4, N]
    score_shape = [bc, 1, -1] if channel_first else [bc, -1, 1]
    flat_scores = mb.reshape(x=scores, shape=score_shape)

    common = {
        "boxes": cs,
        "scores": flat_scores,
        "iou_threshold": dtype.type(iou_thr),
        "max_boxes": np.int32(max_boxes),
        "per_class_suppression": False,
    }
    # Masks live in the layout of the selected scores ([BC, M] at iOS17+ where indices give the
    # validity, [BC, M, 1] before) so the score test needs no reshape.
    tail = [] if channel_first else [1]
    masks: list[Any] = []
    rank = ctx.const(np.arange(max_boxes, dtype=np.int32).reshape([1, max_boxes, *tail]))
    if k_var is not None:
        k_var = ctx.cast(mb.reshape(x=node.input(2), shape=[1, 1, *tail]), np.int32)
    if channel_first:
        _, sel_scores, sel_idx = mb.non_maximum_suppression(**common)
        masks.append(mb.greater_equal(x=sel_idx, y=np.int32(0)))
        limit = k_var
        if node.input(4) is not None:
            sel_scores = mb.reshape(x=sel_scores, shape=[bc, max_boxes])
    else:
        no_threshold = dtype.type(-np.inf)
        _, sel_scores, sel_idx, count = mb.non_maximum_suppression(
            score_threshold=no_threshold, **common
        )
        limit = mb.expand_dims(x=count, axes=[1, 2])
        if k_var is not None:
            limit = mb.minimum(x=limit, y=k_var)
    if k_const == 0:
        limit = ctx.const(np.zeros([1, 1, *tail], np.int32))
    if limit is not None:
        masks.append(mb.less(x=rank, y=limit))
    if node.input(4) is not None:
        thr = node.const_input(4)
        thr_var = (
            dtype.type(thr.reshape(-1)[0]) if thr is not None
            else mb.reshape(x=node.input(4), shape=[1, 1, *tail])
        )
        masks.append(mb.greater(x=sel_scores, y=thr_var))

    table = np.zeros((bc, max_boxes, *tail, 2), np.int32)
    table[..., 0] = (np.arange(bc) // n_class).reshape([bc, 1, *tail])
    table[..., 1] = (np.arange(bc) % n_class).reshape([bc, 1, *tail])
    box_index = mb.expand_dims(x=sel_idx, axes=[2, 3] if tail else [2])
    triples = mb.concat(values=[ctx.const(table), box_index], axis=-1)
    where = mb.non_zero(x=_and(ctx, masks))
    return mb.gather_nd(x=triples, indices=where)


def _caffe_bins(start: int, end: int, pooled: int, size: int) -> list[tuple[int, int]]:
    """[lo, hi) pixel range of each of ``pooled`` bins of a Caffe ROI (fp32 like onnxruntime)."""
    length = max(end - start + 1, 1)
    bin_size = np.float32(length) / np.float32(pooled)
    bins = []
    for i in range(pooled):
        lo = int(np.floor(np.float32(i) * bin_size)) + start
        hi = int(np.ceil(np.float32(i + 1) * bin_size)) + start
        bins.append((min(max(lo, 0), size), min(max(hi, 0), size)))
    return bins


def _round_half_away(v: float) -> int:
    return int(np.sign(v) * np.floor(abs(v) + 0.5))


@composite_op("MaxRoiPool", since=1)
def max_roi_pool(ctx: LowerContext, node: Node) -> Any:
    """y[r, c, i, j] = max of x[batch_r, c] over bin (i, j) of ROI r (Caffe quantization), 0 if empty.

    MIL: gather (the ROIs' images), add a 0/-inf column mask [R, 1, 1, PW, W] then reduce_max
    over W, add a 0/-inf row mask [R, 1, PH, H, 1] then reduce_max over H (separable and exact:
    adding 0 keeps values bit-exact, -inf never wins), and a select for empty bins when any.
    The masks are built at conversion time from the constant ROIs.
    Limits: rois must be constant (bins are quantized at conversion time); x's C, H, W static.
    """
    mb = ctx.mb
    x = node.input(0)
    rois = node.const_input(1)
    if rois is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: rois are computed at run time; only constant ROIs are "
            "lowered exactly; make the ROIs an initializer or use RoiAlign"
        )
    shape = static_shape(x)
    if shape is None or x.rank != 4:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: x must be a static [N, C, H, W] tensor (got {list(x.shape)}); "
            "export with fixed input shapes"
        )
    _, _, height, width = shape
    pooled_h, pooled_w = (int(v) for v in node.attrs["pooled_shape"])
    scale = np.float32(node.attrs.get("spatial_scale", 1.0))
    rois = np.asarray(rois, np.float32).reshape(-1, 5)
    n_roi = rois.shape[0]
    dtype = ctx.np_dtype(x)

    col_bias = np.full((n_roi, 1, 1, pooled_w, width), -np.inf, dtype)
    row_bias = np.full((n_roi, 1, pooled_h, height, 1), -np.inf, dtype)
    empty = np.zeros((n_roi, 1, pooled_h, pooled_w), bool)
    for r, (_, x1, y1, x2, y2) in enumerate(rois):
        ws, hs = _round_half_away(x1 * scale), _round_half_away(y1 * scale)
        we, he = _round_half_away(x2 * scale), _round_half_away(y2 * scale)
        wbins, hbins = _caffe_bins(ws, we, pooled_w, width), _caffe_bins(hs, he, pooled_h, height)
        for j, (lo, hi) in enumerate(wbins):
            col_bias[r, 0, 0, j, lo:hi] = 0
        for i, (lo, hi) in enumerate(hbins):
            row_bias[r, 0, i, lo:hi, 0] = 0
        empty[r, 0] = np.array([hi <= lo for lo, hi in hbins])[:, None] | np.array([hi <= lo for lo, hi in wbins])[None]

    images = mb.gather(x=x, indices=ctx.const(rois[:, 0].astype(np.int32)), axis=0)  # [R, C, H, W]
    cols = mb.reduce_max(x=mb.add(x=mb.expand_dims(x=images, axes=[3]), y=ctx.const(col_bias)), axes=[-1])
    # cols: [R, C, H, PW] -> rows over H: [R, C, 1, H, PW] + [R, 1, PH, H, 1].
    pooled = mb.reduce_max(x=mb.add(x=mb.expand_dims(x=cols, axes=[2]), y=ctx.const(row_bias)), axes=[3])
    if empty.any():
        pooled = mb.select(cond=ctx.const(empty), a=ctx.array_like(x, 0), b=pooled)
    return pooled
