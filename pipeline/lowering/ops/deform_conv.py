"""Deformable convolution: DeformConv (2-D).

MIL has no deformable convolution.  The composite samples the input bilinearly at every kernel
tap's shifted position (one batched ``gather`` of the four neighbouring pixels of every tap),
weights the corners (and the optional mask), and contracts the sampled columns with the kernel
in one ``matmul`` (the im2col form of the convolution).  All shapes must be static; sampling
positions and corner weights are computed once per (batch, offset group) and shared by that
group's channels, so the gather moves whole channel vectors.

Spec changes read: DeformConv 19 (introduced: offset layout (N, offset_group*kH*kW*2, oH, oW)
with (y, x) pairs per tap, optional bias and mask, bilinear sampling with zeros outside the
input), 22 (bfloat16).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.ops.indexing import static_shape
from pipeline.lowering.registry import composite_op

log = logging.getLogger(__name__)


def _static(node: Node, var: Any, what: str) -> tuple[int, ...]:
    shape = static_shape(var)
    if shape is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: {what} has run-time dimensions; DeformConv needs static "
            "shapes (fix them with --input)"
        )
    return shape


def _base_positions(node: Node, kh: int, kw: int, oh: int, ow: int) -> tuple[np.ndarray, np.ndarray]:
    """Undeformed sampling rows and columns per (tap, output pixel), shape (kh*kw, oh*ow)."""
    sh, sw = (list(node.attrs.get("strides") or [1, 1]) + [1, 1])[:2]
    dh, dw = (list(node.attrs.get("dilations") or [1, 1]) + [1, 1])[:2]
    pads = list(node.attrs.get("pads") or [0, 0, 0, 0])
    ti, tj = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
    pi, pj = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    rows = (pi.reshape(1, -1) * sh - pads[0]) + (ti.reshape(-1, 1) * dh)
    cols = (pj.reshape(1, -1) * sw - pads[1]) + (tj.reshape(-1, 1) * dw)
    return rows, cols


def _sample(ctx: LowerContext, node: Node, x: Any, offset: Any, mask: Any | None,
            shapes: dict[str, int]) -> Any:
    """Bilinearly sampled columns, shape (N*G, kh*kw*oh*ow, C/G)."""
    mb = ctx.mb
    n, c, h, w, g = shapes["n"], shapes["c"], shapes["h"], shapes["w"], shapes["g"]
    k, p = shapes["kh"] * shapes["kw"], shapes["oh"] * shapes["ow"]
    dtype = ctx.np_dtype(x)
    rows, cols = _base_positions(node, shapes["kh"], shapes["kw"], shapes["oh"], shapes["ow"])
    # (N*G, K, 2, P): the (dy, dx) pair of each tap at each output pixel.
    pairs = mb.reshape(x=offset, shape=np.array([n * g, k, 2, p], np.int32))
    dy, dx = mb.split(x=pairs, num_splits=2, axis=2)
    y = mb.add(x=dy, y=rows.reshape(1, k, 1, p).astype(dtype))  # (NG, K, 1, P)
    xx = mb.add(x=dx, y=cols.reshape(1, k, 1, p).astype(dtype))
    # Corners along the size-1 axis: (y0, x0), (y0, x0+1), (y0+1, x0), (y0+1, x0+1).
    cy = mb.add(x=mb.floor(x=y), y=np.array([0, 0, 1, 1], dtype).reshape(1, 1, 4, 1))
    cx = mb.add(x=mb.floor(x=xx), y=np.array([0, 1, 0, 1], dtype).reshape(1, 1, 4, 1))
    one = dtype.type(1)
    # Bilinear weight of a corner: (1 - |y - cy|) * (1 - |x - cx|).
    wy = mb.sub(x=one, y=mb.abs(x=mb.sub(x=y, y=cy)))
    wx = mb.sub(x=one, y=mb.abs(x=mb.sub(x=xx, y=cx)))
    cy_in = mb.clip(x=cy, alpha=dtype.type(0), beta=dtype.type(h - 1))
    cx_in = mb.clip(x=cx, alpha=dtype.type(0), beta=dtype.type(w - 1))
    inside = mb.logical_and(x=mb.equal(x=cy_in, y=cy), y=mb.equal(x=cx_in, y=cx))
    weight = mb.select(cond=inside, a=mb.mul(x=wy, y=wx), b=dtype.type(0))  # (NG, K, 4, P)
    if mask is not None:
        weight = mb.mul(x=weight, y=mb.reshape(x=mask, shape=np.array([n * g, k, 1, p], np.int32)))
    flat = mb.add(x=mb.mul(x=mb.cast(x=cy_in, dtype="int32"), y=np.int32(w)), y=mb.cast(x=cx_in, dtype="int32"))
    flat = mb.reshape(x=flat, shape=np.array([n * g, k * 4 * p], np.int32))
    # Pixels as (N*G, H*W, C/G) rows so one gather fetches a channel vector per corner.
    pixels = mb.reshape(x=x, shape=np.array([n, g, c // g, h * w], np.int32))
    pixels = mb.reshape(x=mb.transpose(x=pixels, perm=[0, 1, 3, 2]), shape=np.array([n * g, h * w, c // g], np.int32))
    picked = mb.gather(x=pixels, indices=flat, axis=1, batch_dims=1)  # (NG, K*4*P, C/G)
    picked = mb.reshape(x=picked, shape=np.array([n * g, k, 4, p, c // g], np.int32))
    weighted = mb.mul(x=picked, y=mb.expand_dims(x=weight, axes=[-1]))
    return mb.reduce_sum(x=weighted, axes=[2], keep_dims=False)  # (NG, K, P, C/G)


@composite_op("DeformConv", since=19)
def deform_conv(ctx: LowerContext, node: Node) -> Any:
    """y[n, o, p] = b[o] + sum_{c, t} W[o, c, t] * mask[n, t, p] * bilinear(X[n, c], pos(t, p) + offset[n, t, p]).

    MIL: reshape/split/add/floor/abs/clip/equal/select for positions and corner weights, one
    batched gather (iOS16 ``batch_dims``) of the 4 corners of every tap, mul + reduce_sum,
    transpose/reshape to im2col columns, one matmul with the kernel, add of the bias: ~30 ops,
    independent of the kernel size.  No native op exists; gather + matmul keep it exact to
    the bilinear weights' rounding.
    Limits: 2-D only; static shapes; iOS16+ (batched gather).
    """
    mb = ctx.mb
    x, weight, offset, bias, mask = (node.input(i) for i in range(5))
    if x.rank != 4:
        raise UnsupportedOpError(f"lower: {node.describe()}: only 2-D deformable convolution (rank-4 X) is supported")
    ctx.require_target(16, "DeformConv gathers sampled pixels with gather(batch_dims=1)")
    n, c, h, w = _static(node, x, "X")
    oc, cin_g, kh, kw = _static(node, weight, "W")
    _, _, oh, ow = _static(node, offset, "offset")
    group, g = int(node.attrs.get("group", 1)), int(node.attrs.get("offset_group", 1))
    if c % g or c != cin_g * group or oc % group:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: channels {c} do not divide into group={group} / offset_group={g}; fix the model"
        )
    shapes = {"n": n, "c": c, "h": h, "w": w, "g": g, "kh": kh, "kw": kw, "oh": oh, "ow": ow}
    k, p = kh * kw, oh * ow
    sampled = _sample(ctx, node, x, offset, mask, shapes)
    # Columns (N, group, P, C/group * K) with channel-major, tap-minor order, as W is laid out.
    cols = mb.reshape(x=sampled, shape=np.array([n, g, k, p, c // g], np.int32))
    cols = mb.transpose(x=cols, perm=[0, 3, 1, 4, 2])  # (N, P, G, C/G, K)
    cols = mb.reshape(x=cols, shape=np.array([n, p, group, cin_g * k], np.int32))
    cols = mb.transpose(x=cols, perm=[0, 2, 1, 3])  # (N, group, P, Cin_g*K)
    w_val = node.const_input(1)
    if w_val is not None:
        kernel = ctx.const(np.ascontiguousarray(
            w_val.reshape(group, oc // group, cin_g * k).transpose(0, 2, 1)).astype(ctx.np_dtype(x)))
    else:
        kernel = mb.transpose(x=mb.reshape(x=weight, shape=np.array([group, oc // group, cin_g * k], np.int32)),
                              perm=[0, 2, 1])
    out = mb.matmul(x=cols, y=kernel)  # (N, group, P, oC/group)
    out = mb.reshape(x=mb.transpose(x=out, perm=[0, 1, 3, 2]), shape=np.array([n, oc, oh, ow], np.int32))
    if bias is not None:
        out = mb.add(x=out, y=mb.reshape(x=bias, shape=np.array([oc, 1, 1], np.int32)))
    return out
