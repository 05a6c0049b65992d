"""GridSample as one gather: cubic (bicubic) and N-D (volumetric) sampling, which MIL resample lacks.

Called by the GridSample handler (vision.py) for mode cubic / bicubic or a 5-D input; 4-D
linear and nearest use MIL resample there.  Per spatial axis (grid component reversed: x is
the last axis) the spec's steps run elementwise on the grid, in fp32:

1. x = (g + 1) / 2 * (L - 1) (align_corners) or ((g + 1) * L - 1) / 2; nearest: rint(x);
2. reflection: x outside [x_min, x_max] ([0, L-1] or [-0.5, L-0.5]) is mirrored about them;
   border: x is not clamped, only its taps are (step 4).  For linear and nearest that is the
   same; for cubic it is what onnxruntime and PyTorch compute, while onnx's reference clamps x
   first (and then disagrees with both by up to 0.4 on a unit-range image);
3. taps i = floor(x) + k (linear k in {0, 1}, cubic k in {-1, 0, 1, 2}, nearest k = 0) with
   weights 1 - t, t (linear) or Keys' cubic with A = -0.75 (t = x - floor(x));
4. each tap index is brought in range like a pixel read: zeros drops it (weight 0), border
   clamps it, reflection mirrors it.

The taps of all axes combine by broadcasting into flat indices into (N * prod(S), C) and
products of weights: one gather for all taps, one multiply, one reduce_sum.  Cost: K^D gathered
rows per output position (16 for bicubic, 8 for trilinear).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node

log = logging.getLogger(__name__)

_TAPS = {"nearest": (0,), "linear": (0, 1), "cubic": (-1, 0, 1, 2)}
_A = -0.75  # Keys' cubic coefficient fixed by the spec


def _reflect(ctx: LowerContext, v: Any, lo: float, hi: float) -> Any:
    """v mirrored about [lo, hi] until inside (the spec's reflect, for v outside the range)."""
    mb, f = ctx.mb, np.float32
    span = f(hi - lo)
    if span <= 0:
        return mb.mul(x=v, y=f(0.0))  # a single position: everything reflects onto it
    below = mb.less(x=v, y=f(lo))
    dx = mb.select(cond=below, a=mb.sub(x=f(lo), y=v), b=mb.sub(x=v, y=f(hi)))
    n = mb.floor(x=mb.real_div(x=dx, y=span))
    r = mb.sub(x=dx, y=mb.mul(x=n, y=span))
    even = mb.equal(x=mb.mod(x=n, y=f(2.0)), y=f(0.0))
    near = mb.select(cond=below, a=mb.add(x=r, y=f(lo)), b=mb.sub(x=f(hi), y=r))  # n even
    far = mb.select(cond=below, a=mb.sub(x=f(hi), y=r), b=mb.add(x=r, y=f(lo)))  # n odd
    inside = mb.logical_and(x=mb.greater_equal(x=v, y=f(lo)), y=mb.less_equal(x=v, y=f(hi)))
    return mb.select(cond=inside, a=v, b=mb.select(cond=even, a=near, b=far))


def _cubic_weights(ctx: LowerContext, t: Any) -> Any:
    """Keys' weights of taps -1, 0, 1, 2 at fraction t, stacked on a new last axis."""
    mb, f = ctx.mb, np.float32

    def near(d: Any) -> Any:  # |d| <= 1: (A+2)|d|^3 - (A+3)|d|^2 + 1
        return mb.add(x=mb.mul(x=mb.mul(x=mb.sub(x=mb.mul(x=d, y=f(_A + 2)), y=f(_A + 3)), y=d), y=d), y=f(1.0))

    def far(d: Any) -> Any:  # 1 < |d| < 2: A|d|^3 - 5A|d|^2 + 8A|d| - 4A
        inner = mb.add(x=mb.mul(x=mb.sub(x=mb.mul(x=d, y=f(_A)), y=f(5 * _A)), y=d), y=f(8 * _A))
        return mb.sub(x=mb.mul(x=inner, y=d), y=f(4 * _A))

    one_minus = mb.sub(x=f(1.0), y=t)
    ws = [far(mb.add(x=t, y=f(1.0))), near(t), near(one_minus), far(mb.add(x=one_minus, y=f(1.0)))]
    return mb.stack(values=ws, axis=-1)


def _axis_taps(ctx: LowerContext, g: Any, length: int, mode: str, padding: str, align: bool) -> tuple[Any, Any]:
    """(tap indices as fp32, tap weights), each (N, Q, K), for one spatial axis of length L."""
    mb, f = ctx.mb, np.float32
    if align:
        x = mb.mul(x=mb.add(x=g, y=f(1.0)), y=f((length - 1) / 2))
        lo, hi = 0.0, float(length - 1)
    else:
        x = mb.sub(x=mb.mul(x=mb.add(x=g, y=f(1.0)), y=f(length / 2)), y=f(0.5))
        lo, hi = -0.5, length - 0.5
    if mode == "nearest":
        x = mb.round(x=x)
    if padding == "reflection":
        x = _reflect(ctx, x, lo, hi)
    offsets = np.array(_TAPS[mode], np.float32)
    if mode == "nearest":
        base, weights = mb.floor(x=x), None
    else:
        base = mb.floor(x=x)
        t = mb.sub(x=x, y=base)
        weights = mb.stack(values=[mb.sub(x=f(1.0), y=t), t], axis=-1) if mode == "linear" else _cubic_weights(ctx, t)
    taps = mb.add(x=mb.expand_dims(x=base, axes=[-1]), y=offsets)  # (N, Q, K)
    if padding == "zeros":
        valid = mb.logical_and(x=mb.greater_equal(x=taps, y=f(0.0)), y=mb.less_equal(x=taps, y=f(length - 1)))
        ones = mb.cast(x=valid, dtype="fp32")
        weights = ones if weights is None else mb.mul(x=weights, y=ones)
    elif padding == "reflection":
        taps = mb.round(x=_reflect(ctx, taps, lo, hi))
    taps = mb.clip(x=taps, alpha=f(0.0), beta=f(length - 1))
    return taps, weights


def grid_sample_gather(ctx: LowerContext, node: Node, x: Any, grid: Any, mode: str, padding: str, align: bool) -> Any:
    """Y[n, c, *o] = sum over taps of w * X[n, c, *taps(grid[n, *o])] (see the module docstring).

    MIL: per axis slice_by_index, mul, add, [round], [select/clip or reflect ops], floor, sub,
    stack/expand_dims, add; then mul/add to flat indices, one gather, mul, reduce_sum,
    transpose, reshape.
    """
    mb = ctx.mb
    xs, gs = list(x.shape), list(grid.shape)
    if not all(isinstance(d, (int, np.integer)) for d in xs + gs):
        raise UnsupportedOpError(f"lower: {node.describe()}: gather-based sampling needs static shapes, got {xs} and {gs}")
    n, c, spatial = int(xs[0]), int(xs[1]), [int(d) for d in xs[2:]]
    dims = len(spatial)
    out = [int(d) for d in gs[1:-1]]
    q = math.prod(out)
    k = len(_TAPS[mode])
    if 2 + dims > 5:
        raise UnsupportedOpError(f"lower: {node.describe()}: {dims} spatial axes exceed Core ML's rank 5 for the tap table")
    g = mb.reshape(x=ctx.cast(grid, np.float32), shape=[n, q, dims])
    strides = [math.prod(spatial[d + 1:]) for d in range(dims)]
    flat, weight = None, None
    for d in range(dims):
        comp = dims - 1 - d  # grid components run x (last axis) first
        gd = mb.slice_by_index(x=g, begin=[0, 0, comp], end=[n, q, comp + 1], squeeze_mask=[False, False, True])
        taps, w = _axis_taps(ctx, gd, spatial[d], mode, padding, align)
        shape = [n, q] + [k if e == d else 1 for e in range(dims)]
        term = mb.reshape(x=mb.mul(x=taps, y=np.float32(strides[d])), shape=shape)
        flat = term if flat is None else mb.add(x=flat, y=term)
        if w is not None:
            w = mb.reshape(x=w, shape=shape)
            weight = w if weight is None else mb.mul(x=weight, y=w)
    taps_total = k ** dims
    batch_offset = (np.arange(n, dtype=np.float32) * math.prod(spatial)).reshape([n] + [1] * (dims + 1))
    flat = mb.add(x=flat, y=batch_offset) if n > 1 else flat
    index = mb.cast(x=mb.reshape(x=flat, shape=[n * q * taps_total]), dtype="int32")
    table = mb.transpose(x=mb.reshape(x=x, shape=[n, c, math.prod(spatial)]), perm=[0, 2, 1])
    table = mb.reshape(x=table, shape=[n * math.prod(spatial), c])
    rows = mb.gather(x=table, indices=index, axis=0)  # (N*Q*T, C)
    rows = mb.reshape(x=rows, shape=[n, q, taps_total, c])
    if weight is not None:
        weight = mb.reshape(x=ctx.cast(weight, ctx.np_dtype(x)), shape=[n, q, taps_total, 1])
        rows = mb.mul(x=rows, y=weight)
    y = mb.reduce_sum(x=rows, axes=[2], keep_dims=False)  # (N, Q, C)
    y = mb.transpose(x=y, perm=[0, 2, 1])
    return mb.reshape(x=y, shape=[n, c] + out)
