"""Vision ops: GridSample (16, 20), AffineGrid (20), RoiAlign (10, 16), CenterCropPad (18), Col2Im (18).

Spec changes read: GridSample 16 (bilinear/nearest/bicubic, 4-D), 20 (linear/nearest/cubic,
N-D); RoiAlign 10 (output_half_pixel only, ROI sizes clamped to >= 1), 16
(coordinate_transformation_mode, default half_pixel, no clamp); AffineGrid 20; CenterCropPad 18;
Col2Im 18.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.ops.grid_sample_gather import grid_sample_gather
from pipeline.lowering.registry import composite_op, onnx_op

log = logging.getLogger(__name__)


def _static(node: Node, var: Any, what: str) -> list[int]:
    shape = list(var.shape)
    if any(not isinstance(d, (int, np.integer)) for d in shape):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: {what} shape {shape} is not static; export with fixed input shapes"
        )
    return [int(d) for d in shape]


def _const_ints(node: Node, i: int, what: str) -> list[int]:
    val = node.const_input(i)
    if val is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: {what} is computed at run time; only a constant {what} can be lowered"
        )
    return [int(v) for v in val.reshape(-1)]


_GRID_MODES = {"bilinear": "bilinear", "linear": "bilinear", "nearest": "nearest"}


@onnx_op("GridSample", since=16)
@onnx_op("GridSample", since=20)
def grid_sample(ctx: LowerContext, node: Node) -> Any:
    """Y[n,c,h,w] = X[n,c] sampled at grid[n,h,w] = (x, y) in [-1, 1] (bilinear or nearest).

    MIL: resample (normalized_minus_one_to_one); padding zeros -> constant 0, border -> border,
    reflection -> symmetric (align_corners=0: mirror about the outer pixel edges, edge pixel
    repeated) or reflection (align_corners=1: mirror about the edge pixel centres).
    Nearest: ONNX rounds the pixel coordinate half to even, MIL resample's nearest rounds ties
    up, so the pixel coordinates are computed here (fp32, in the spec's order of roundings),
    rounded with MIL round (ties to even) and handed to resample as unnormalized integers, which
    every padding mode then maps exactly as ONNX does (+3-4 elementwise ops on the grid only).
    Cubic/bicubic and 5-D (volumetric) inputs: one gather of all taps (grid_sample_gather.py).
    Limits: resample needs iOS16 (fp16 grids).
    """
    x, grid = node.input(0), node.input(1)
    mode = node.attr("mode", "linear")
    padding = node.attr("padding_mode", "zeros")
    align = bool(node.attr("align_corners", 0))
    if padding not in ("zeros", "border", "reflection"):
        raise UnsupportedOpError(f"lower: {node.describe()}: padding_mode={padding!r} is unknown; fix the model")
    if mode not in (*_GRID_MODES, "cubic", "bicubic"):
        raise UnsupportedOpError(f"lower: {node.describe()}: mode={mode!r} is unknown; fix the model")
    if x.rank != 4 or mode in ("cubic", "bicubic"):
        gather_mode = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
        return grid_sample_gather(ctx, node, x, grid, gather_mode, padding, align)
    ctx.require_target(16, "GridSample lowers to resample, whose fp16 coordinates need iOS16")
    mil_padding = {"zeros": "constant", "border": "border"}.get(padding, "reflection" if align else "symmetric")
    coords_mode = "normalized_minus_one_to_one"
    if mode == "nearest":
        grid, coords_mode = _nearest_pixels(ctx, node, x, grid, align), "unnormalized"
    grid = ctx.cast(grid, ctx.np_dtype(x)) if ctx.np_dtype(grid) != ctx.np_dtype(x) else grid
    return ctx.mb.resample(
        x=x, coordinates=grid, sampling_mode=_GRID_MODES[mode], padding_mode=mil_padding,
        padding_value=ctx.scalar_like(x, 0.0), coordinates_mode=coords_mode,
        align_corners=align,
    )


def _nearest_pixels(ctx: LowerContext, node: Node, x: Any, grid: Any, align: bool) -> Any:
    """rint of the pixel coordinates of grid (x, y): (g+1)/2*(L-1) (align) or ((g+1)*L-1)/2.

    Written as (g+1)*((L-1)/2) and (g+1)*(L/2) - 0.5: scaling by a power of two commutes with
    fp32 rounding, so these round exactly like the spec's expressions.
    """
    h, w = x.shape[2], x.shape[3]
    if not all(isinstance(d, (int, np.integer)) for d in (h, w)):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: nearest sampling needs the image's height and width at "
            "conversion time; fix the input shape"
        )
    grid = ctx.cast(grid, np.float32) if ctx.np_dtype(grid) != np.float32 else grid
    sizes = np.array([w, h], np.float32)
    shifted = ctx.mb.add(x=grid, y=np.float32(1.0))
    if align:
        pixels = ctx.mb.mul(x=shifted, y=(sizes - 1) / 2)
    else:
        pixels = ctx.mb.sub(x=ctx.mb.mul(x=shifted, y=sizes / 2), y=np.float32(0.5))
    return ctx.mb.round(x=pixels)


def _base_coords(n: int, align: bool) -> np.ndarray:
    """Normalised pixel-centre coordinates in [-1, 1] along one axis (AffineGrid spec)."""
    if align:
        return np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1)
    return (2.0 * np.arange(n) + 1.0) / n - 1.0


@composite_op("AffineGrid", since=20)
def affine_grid(ctx: LowerContext, node: Node) -> Any:
    """grid[n, *p] = theta[n] @ (x_p, y_p[, z_p], 1) over the normalised output positions p.

    MIL: matmul of the constant homogeneous base grid with theta (transpose_y), then reshape —
    the coordinate table is folded at conversion time.
    Limits: size must be constant.
    """
    theta = node.input(0)
    size = _const_ints(node, 1, "size")
    align = bool(node.attr("align_corners", 0))
    spatial = size[2:]
    if len(spatial) not in (2, 3):
        raise UnsupportedOpError(f"lower: {node.describe()}: size {size} is not 4-D or 5-D; fix the model")
    axes = [_base_coords(n, align) for n in spatial]  # (D,) H, W
    mesh = np.meshgrid(*axes, indexing="ij")
    coords = [m.reshape(-1) for m in reversed(mesh)]  # x first, then y (then z)
    base = np.stack(coords + [np.ones_like(coords[0])], axis=1).astype(ctx.np_dtype(theta))
    flat = ctx.mb.matmul(x=ctx.const(base), y=theta, transpose_y=True)
    return ctx.mb.reshape(x=flat, shape=np.array([size[0], *spatial, len(spatial)], np.int32))


@composite_op("CenterCropPad", since=18)
def center_crop_pad(ctx: LowerContext, node: Node) -> Any:
    """Y = X centre-cropped or zero-padded to ``shape`` on ``axes`` (extra element at the end).

    MIL: slice_by_index for the cropped axes, pad (constant 0) for the padded ones (concat with
    constant zeros for integer tensors, which MIL pad does not take).
    Limits: shape must be constant and X's shape static.
    """
    x = node.input(0)
    dims = _static(node, x, "input")
    target = _const_ints(node, 1, "shape")
    rank = len(dims)
    axes = [a % rank for a in (node.attr("axes") or range(rank))]
    begin, end = [0] * rank, list(dims)
    pads = [0] * (2 * rank)
    for ax, want in zip(axes, target):
        have = dims[ax]
        if want < have:
            begin[ax] = (have - want) // 2
            end[ax] = begin[ax] + want
        elif want > have:
            pads[2 * ax] = (want - have) // 2
            pads[2 * ax + 1] = want - have - pads[2 * ax]
    y = x
    if begin != [0] * rank or end != dims:
        y = ctx.mb.slice_by_index(x=y, begin=np.array(begin, np.int32), end=np.array(end, np.int32))
    if any(pads) and ctx.is_float(x):
        y = ctx.mb.pad(x=y, pad=np.array(pads, np.int32), mode="constant", constant_val=ctx.scalar_like(x, 0))
    elif any(pads):  # MIL pad is float-only: concat constant zero blocks instead
        cur = [e - b for b, e in zip(begin, end)]
        for ax in range(rank):
            parts = []
            for amount, is_after in ((pads[2 * ax], False), (pads[2 * ax + 1], True)):
                if amount:
                    zeros = ctx.const(np.zeros([amount if i == ax else d for i, d in enumerate(cur)], ctx.np_dtype(x)))
                    parts.append((is_after, zeros))
            if parts:
                before = [z for after, z in parts if not after]
                after = [z for after, z in parts if after]
                y = ctx.mb.concat(values=[*before, y, *after], axis=ax)
                cur[ax] += pads[2 * ax] + pads[2 * ax + 1]
    return y if y is not x else ctx.mb.identity(x=x)


@composite_op("Col2Im", since=18)
def col2im(ctx: LowerContext, node: Node) -> Any:
    """Y[n, c, p] = sum of the column entries of block (c, k) and position l landing on pixel p.

    MIL: reshape to [N, C*K, Lh, Lw] + conv_transpose (groups=C) with a constant one-hot
    kernel: col2im is exactly a transposed convolution with an identity filter, which the
    Neural Engine runs natively.
    Limits: 2-D images only; image_shape/block_shape constant; the trailing rows/columns that no
    block reaches (when (H + pads - extent) % stride > end pad) are not supported.
    """
    x = node.input(0)
    image = _const_ints(node, 1, "image_shape")
    block = _const_ints(node, 2, "block_shape")
    if len(image) != 2:
        raise UnsupportedOpError(f"lower: {node.describe()}: {len(image)}-D image; only 2-D Col2Im is lowered")
    n, ck, length = _static(node, x, "input")
    dil = node.attr("dilations") or [1, 1]
    pads = node.attr("pads") or [0, 0, 0, 0]
    strides = node.attr("strides") or [1, 1]
    k = block[0] * block[1]
    channels = ck // k
    cols = []
    for i in range(2):
        extent = dil[i] * (block[i] - 1) + 1
        span = image[i] + pads[i] + pads[i + 2] - extent
        cols.append(span // strides[i] + 1)
        if span % strides[i] > pads[i + 2]:
            raise UnsupportedOpError(
                f"lower: {node.describe()}: blocks leave {span % strides[i]} trailing pixels of axis {i} "
                "uncovered beyond the end pad; not supported"
            )
    if cols[0] * cols[1] != length:
        raise UnsupportedOpError(f"lower: {node.describe()}: {length} blocks, expected {cols[0] * cols[1]}; fix the model")
    weight = np.zeros((ck, 1, block[0], block[1]), dtype=ctx.np_dtype(x))
    for c in range(channels):
        for j in range(k):
            weight[c * k + j, 0, j // block[1], j % block[1]] = 1
    grid = ctx.mb.reshape(x=x, shape=np.array([n, ck, cols[0], cols[1]], np.int32))
    ends = [pads[i + 2] - (image[i] + pads[i] + pads[i + 2] - dil[i] * (block[i] - 1) - 1) % strides[i] for i in range(2)]
    return ctx.mb.conv_transpose(
        x=grid, weight=ctx.const(weight), strides=np.array(strides, np.int32), dilations=np.array(dil, np.int32),
        pad_type="custom", pad=np.array([pads[0], ends[0], pads[1], ends[1]], np.int32), groups=channels,
    )


def _roi_boxes(ctx: LowerContext, rois: Any, scale: float, offset: float, clamp: bool, th: int, tw: int) -> Any:
    """crop_resize corners [x1', y1', x2', y2'] whose ALIGN_CORNERS grid hits RoiAlign's samples.

    RoiAlign samples start + (j + 0.5) * size / T (j < T = bins * ratio); shrinking the box by
    half a step at each end turns that into crop_resize's start' + j * (end' - start') / (T - 1).
    Coordinates are shifted by +1 for the one-pixel replicate border added to X.
    """
    half = np.array([0.5 / tw, 0.5 / th])
    if not clamp:
        weight = np.zeros((4, 4))
        for axis in range(2):
            weight[axis, axis], weight[axis, axis + 2] = scale * (1 - half[axis]), scale * half[axis]
            weight[axis + 2, axis], weight[axis + 2, axis + 2] = scale * half[axis], scale * (1 - half[axis])
        return ctx.mb.linear(x=rois, weight=ctx.const(weight.astype(np.float32)),
                             bias=ctx.const(np.full(4, 1.0 - offset, np.float32)))
    # Opset-10 semantics: ROI sizes below one pixel are raised to one pixel.
    to_start_size = np.array([[scale, 0, 0, 0], [0, scale, 0, 0], [-scale, 0, scale, 0], [0, -scale, 0, scale]])
    start_size = ctx.mb.linear(x=rois, weight=ctx.const(to_start_size.astype(np.float32)),
                               bias=ctx.const(np.array([1 - offset, 1 - offset, 0, 0], np.float32)))
    floor = np.array([np.finfo(np.float32).min, np.finfo(np.float32).min, 1.0, 1.0], np.float32)
    start_size = ctx.mb.maximum(x=start_size, y=ctx.const(floor))
    to_corners = np.array([[1, 0, half[0], 0], [0, 1, 0, half[1]], [1, 0, 1 - half[0], 0], [0, 1, 0, 1 - half[1]]])
    return ctx.mb.linear(x=start_size, weight=ctx.const(to_corners.astype(np.float32)),
                         bias=ctx.const(np.zeros(4, np.float32)))


def _sampling_ratio(node: Node, ratio: int, clamp: bool, scale: float, oh: int, ow: int) -> tuple[int, int]:
    """Samples per bin (height, width); adaptive (0) only for constant ROIs that agree on one grid."""
    if ratio > 0:
        return ratio, ratio
    rois = node.const_input(1)
    if rois is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: sampling_ratio=0 (adaptive per ROI) with run-time ROIs; MIL "
            "crop_resize needs one sample grid for all ROIs. Set sampling_ratio > 0 in the model"
        )
    sizes = (rois[:, 2:] - rois[:, :2]) * scale
    if clamp:
        sizes = np.maximum(sizes, 1.0)
    per_roi = {(max(1, int(np.ceil(h / oh))), max(1, int(np.ceil(w / ow)))) for w, h in sizes}
    if len(per_roi) != 1:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: adaptive sampling_ratio gives different grids per ROI "
            f"({sorted(per_roi)}); set sampling_ratio > 0 in the model"
        )
    return next(iter(per_roi))


@composite_op("RoiAlign", since=10)
@composite_op("RoiAlign", since=16)
def roi_align(ctx: LowerContext, node: Node) -> Any:
    """Y[k,c,i,j] = avg (or max) of bilinear samples of X[b_k, c] on a ratio x ratio grid in bin (i, j).

    MIL: pad (replicate 1 px, so samples within one pixel outside clamp to the edge as RoiAlign
    does while farther ones read crop_resize's 0), linear (ROI -> box corners, folded affine
    map), crop_resize (iOS17, boxes + box_indices), avg_pool / max_pool with kernel = stride = ratio.
    Max mode (onnxruntime's and onnx's reference reading: per sample point the max of the four
    weighted corner terms w_i * X[corner_i], then the max over the bin's samples) cannot come
    out of crop_resize, which sums the terms: see :func:`_roi_align_max`.
    Limits: sampling_ratio=0 needs constant ROIs sharing one grid; needs iOS17.
    """
    x, rois, indices = node.input(0), node.input(1), node.input(2)
    mode = node.attr("mode", "avg")
    if mode not in ("avg", "max"):
        raise UnsupportedOpError(f"lower: {node.describe()}: mode={mode!r} is not avg or max; fix the model")
    transform = node.attr("coordinate_transformation_mode") or "output_half_pixel"
    if transform not in ("half_pixel", "output_half_pixel"):
        raise UnsupportedOpError(f"lower: {node.describe()}: coordinate_transformation_mode={transform!r} is unknown")
    ctx.require_target(17, "RoiAlign lowers to crop_resize with box_indices, added in iOS17")
    oh, ow = int(node.attr("output_height", 1)), int(node.attr("output_width", 1))
    scale = float(node.attr("spatial_scale", 1.0))
    clamp = transform == "output_half_pixel"
    rh, rw = _sampling_ratio(node, int(node.attr("sampling_ratio", 0)), clamp, scale, oh, ow)
    th, tw = oh * rh, ow * rw
    if mode == "max":
        return _roi_align_max(ctx, node, (x, rois, indices), scale, clamp, (oh, ow, rh, rw))
    boxes = _roi_boxes(ctx, ctx.cast(rois, np.float32), scale, 0.0 if clamp else 0.5, clamp, th, tw)
    padded = ctx.mb.pad(x=x, pad=np.array([0, 0, 0, 0, 1, 1, 1, 1], np.int32), mode="replicate")
    samples = ctx.mb.crop_resize(
        x=padded, boxes=boxes, box_indices=ctx.cast(indices, np.int32), target_height=th, target_width=tw,
        normalized_coordinates=False, box_coordinate_mode="CORNERS_WIDTH_FIRST", sampling_mode="ALIGN_CORNERS",
        pad_value=ctx.scalar_like(x, 0.0),
    )
    if (rh, rw) == (1, 1):
        return samples
    pool = ctx.mb.avg_pool if mode == "avg" else ctx.mb.max_pool
    kwargs = {"exclude_padding_from_average": True} if mode == "avg" else {}
    return pool(x=samples, kernel_sizes=[rh, rw], strides=[rh, rw], pad_type="valid", **kwargs)


def _roi_axis(ctx: LowerContext, start: Any, size: Any, bins: int, ratio: int, length: int) -> tuple[Any, ...]:
    """One axis of RoiAlign's samples: (low index, high index, low weight, high weight), [K, T].

    Sample t = start + size * (bin + (s + 0.5) / ratio) / bins; outside [-1, length] both weights
    are 0; else clamped to [0, length-1], low = floor, high = min(low + 1, length - 1).
    """
    mb = ctx.mb
    steps = np.array([(b + (r + 0.5) / ratio) / bins for b in range(bins) for r in range(ratio)], np.float32)
    pos = mb.add(x=start, y=mb.mul(x=size, y=steps[None, :]))
    inside = mb.logical_and(x=mb.greater_equal(x=pos, y=np.float32(-1)), y=mb.less_equal(x=pos, y=np.float32(length)))
    valid = mb.cast(x=inside, dtype="fp32")
    clamped = mb.clip(x=pos, alpha=np.float32(0), beta=np.float32(length - 1))
    low = mb.floor(x=clamped)
    frac = mb.sub(x=clamped, y=low)
    high = mb.minimum(x=mb.add(x=low, y=np.float32(1)), y=np.float32(length - 1))
    w_high = mb.mul(x=frac, y=valid)
    w_low = mb.sub(x=valid, y=w_high)
    return low, high, w_low, w_high


def _roi_align_max(ctx: LowerContext, node: Node, inputs: tuple[Any, Any, Any], scale: float, clamp: bool,
                   grid: tuple[int, int, int, int]) -> Any:
    """RoiAlign max: Y[k,c,i,j] = max over the bin's samples of max_q w_q * X[b_k, c, corner_q].

    MIL: the sample coordinates and bilinear weights per axis from the ROIs ([K, T], a few
    elementwise ops), four gathers of X (as [N*H*W, C] rows) at the corner pixels, mul/maximum,
    reshape + reduce_max over each bin's samples, transpose to NCHW.  A gather composite is the
    only exact form: no MIL sampler exposes the separate corner terms.
    Limits: X's shape must be static.
    """
    mb = ctx.mb
    x, rois, indices = inputs
    oh, ow, rh, rw = grid
    n, c, h, w = _static(node, x, "input")
    dtype = ctx.np_dtype(x)
    offset = 0.0 if clamp else 0.5
    to_start_size = np.array([[scale, 0, 0, 0], [0, scale, 0, 0], [-scale, 0, scale, 0], [0, -scale, 0, scale]],
                             np.float32)
    start_size = mb.linear(x=ctx.cast(rois, np.float32), weight=ctx.const(to_start_size),
                           bias=ctx.const(np.array([-offset, -offset, 0, 0], np.float32)))
    if clamp:  # output_half_pixel (opset 10): ROI sizes below one pixel are raised to one pixel
        floor = np.array([np.finfo(np.float32).min, np.finfo(np.float32).min, 1.0, 1.0], np.float32)
        start_size = mb.maximum(x=start_size, y=ctx.const(floor))
    cols = [mb.slice_by_index(x=start_size, begin=[0, i], end=[0, i + 1], end_mask=[True, False]) for i in range(4)]
    ylo, yhi, wyl, wyh = _roi_axis(ctx, cols[1], cols[3], oh, rh, h)
    xlo, xhi, wxl, wxh = _roi_axis(ctx, cols[0], cols[2], ow, rw, w)
    base = mb.mul(x=ctx.cast(indices, np.float32), y=np.float32(h * w))
    base = mb.expand_dims(x=base, axes=[1, 2])  # [K, 1, 1]
    rows = mb.reshape(x=mb.transpose(x=x, perm=[0, 2, 3, 1]), shape=np.array([n * h * w, c], np.int32))
    best = None
    for ys, wy in ((ylo, wyl), (yhi, wyh)):
        y_off = mb.add(x=base, y=mb.expand_dims(x=mb.mul(x=ys, y=np.float32(w)), axes=[2]))  # [K, Th, 1]
        for xs, wx in ((xlo, wxl), (xhi, wxh)):
            flat = ctx.cast(mb.add(x=y_off, y=mb.expand_dims(x=xs, axes=[1])), np.int32)  # [K, Th, Tw]
            weight = mb.mul(x=mb.expand_dims(x=wy, axes=[2]), y=mb.expand_dims(x=wx, axes=[1]))
            weight = ctx.cast(mb.expand_dims(x=weight, axes=[3]), dtype) if dtype != np.float32 else \
                mb.expand_dims(x=weight, axes=[3])
            term = mb.mul(x=mb.gather(x=rows, indices=flat, axis=0), y=weight)  # [K, Th, Tw, C]
            best = term if best is None else mb.maximum(x=best, y=term)
    # Core ML tensors stop at rank 5: fold K and the bin rows together while reducing.
    binned = mb.reshape(x=best, shape=np.array([-1, rh, ow, rw, c], np.int32))  # [K*oh, rh, ow, rw, C]
    pooled = mb.reduce_max(x=binned, axes=[1, 3], keep_dims=False)  # [K*oh, ow, C]
    pooled = mb.reshape(x=pooled, shape=np.array([-1, oh, ow, c], np.int32))
    return mb.transpose(x=pooled, perm=[0, 3, 1, 2])
