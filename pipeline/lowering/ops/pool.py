"""Pooling: MaxPool, AveragePool, LpPool, GlobalAveragePool, GlobalMaxPool, GlobalLpPool.

Windows map to MIL ``max_pool`` / ``avg_pool`` / ``l2_pool`` with explicit pads.  ONNX
``ceil_mode`` is turned into extra end padding (the "overhang" of the last window), which is
exact for max pooling, for averages that exclude padding, and for sums; only averages that
count padding need the input padded first.  Dilated windows, which MIL pools lack, become a
composite of strided slices (one per kernel tap) reduced by maximum / add.

Spec changes read: MaxPool 1, 8 (storage_order, Indices output), 10 (ceil_mode, dilations), 11
(auto_pad pads from the output size), 12 (int8/uint8), 22 (types).  AveragePool 1, 7
(count_include_pad), 10 (ceil_mode), 11, 19 (dilations), 22.  LpPool 1 (float p), 2 (int p), 11,
18 (ceil_mode, dilations), 22.  Global* 1, 2 (GlobalLpPool int p), 22.
"""

from __future__ import annotations

import itertools
import logging
import math
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.ops.conv_pool import mil_pad, per_dim, resolve_padding, static_dims
from pipeline.lowering.registry import composite_op, onnx_op

log = logging.getLogger(__name__)

#: Most kernel taps a dilated-pool composite may expand to (one slice op each).
MAX_DILATED_TAPS = 64


class _Plan:
    """Geometry of one pooling node: kernel, strides, dilations, pads and ceil-mode overhang."""

    def __init__(self, ctx: LowerContext, node: Node, x: Any) -> None:
        nsp = x.rank - 2
        if nsp not in (1, 2, 3):
            raise UnsupportedOpError(
                f"lower: {node.describe()}: MIL pooling handles 1-3 spatial dims, got {nsp}"
            )
        self.kernel = [int(k) for k in node.attrs.get("kernel_shape") or []]
        if len(self.kernel) != nsp:
            raise UnsupportedOpError(
                f"lower: {node.describe()}: kernel_shape must have {nsp} values; fix the model"
            )
        self.strides = per_dim(node, "strides", nsp, 1)
        self.dilations = per_dim(node, "dilations", nsp, 1)
        self.pad_type, pads = resolve_padding(node, x, self.kernel, self.strides, self.dilations)
        self.pads = pads
        self.overhang = [0] * nsp
        self.out: list[int] | None = None
        dims = static_dims(x)
        if pads is not None and dims is not None:
            self.out = []
            for i, size in enumerate(dims[2:]):
                self._size(i, size, bool(node.attrs.get("ceil_mode", 0)))
        elif node.attrs.get("ceil_mode", 0):
            raise UnsupportedOpError(
                f"lower: {node.describe()}: ceil_mode needs static spatial sizes; fix the input shape"
            )
        if self.pad_type == "same_lower":
            ctx.require_target(16, "pooling with SAME_LOWER padding on dynamic sizes")

    def _size(self, i: int, size: int, ceil: bool) -> None:
        """ONNX output size; ceil mode drops a last window starting past the begin-padded input."""
        assert self.pads is not None and self.out is not None
        (pb, pe), s = self.pads[i], self.strides[i]
        eff = (self.kernel[i] - 1) * self.dilations[i] + 1
        span = size + pb + pe - eff
        n = (math.ceil(span / s) if ceil else span // s) + 1
        if ceil and (n - 1) * s >= size + pb:
            n -= 1
        self.out.append(n)
        self.overhang[i] = max(0, (n - 1) * s + eff - (size + pb + pe))

    @property
    def dilated(self) -> bool:
        return any(d != 1 for d in self.dilations)

    def mil_kwargs(self, extra_end: bool = True) -> dict[str, Any]:
        """kernel_sizes/strides/pad_type/pad for a MIL pool (overhang added to the end pads)."""
        kw: dict[str, Any] = {
            "kernel_sizes": np.array(self.kernel, np.int32),
            "strides": np.array(self.strides, np.int32),
        }
        if self.pads is None:
            kw["pad_type"] = self.pad_type
            return kw
        pads = [(b, e + (o if extra_end else 0)) for (b, e), o in zip(self.pads, self.overhang)]
        if any(p for pair in pads for p in pair):
            kw["pad_type"], kw["pad"] = "custom", mil_pad(pads)
        else:
            kw["pad_type"] = "valid"
        return kw


def _float_input(ctx: LowerContext, x: Any) -> tuple[Any, Any]:
    """(x as a float tensor, its original dtype): MIL pools take fp16/fp32 only."""
    dtype = ctx.np_dtype(x)
    return (x, dtype) if dtype.kind == "f" else (ctx.cast(x, np.float32), dtype)


def _taps(ctx: LowerContext, node: Node, plan: _Plan, x: Any, fill: float) -> list[Any]:
    """One strided slice of the padded ``x`` per kernel tap (dilated-window composite)."""
    if plan.out is None or plan.pads is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: dilated pooling needs static spatial sizes; fix the input shape"
        )
    if math.prod(plan.kernel) > MAX_DILATED_TAPS:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: dilated pooling with {math.prod(plan.kernel)} taps is too large "
            f"for the slice composite (max {MAX_DILATED_TAPS}); use --custom-layers {node.op_type}"
        )
    pads = [(b, e + o) for (b, e), o in zip(plan.pads, plan.overhang)]
    if any(p for pair in pads for p in pair):
        x = ctx.mb.pad(
            x=x,
            pad=mil_pad([(0, 0), (0, 0)] + pads),
            mode="constant",
            constant_val=ctx.scalar_like(x, fill),
        )
    nsp = len(plan.kernel)
    taps = []
    for offsets in itertools.product(*(range(k) for k in plan.kernel)):
        begin = [0, 0] + [o * d for o, d in zip(offsets, plan.dilations)]
        end = [0, 0] + [b + (n - 1) * s + 1 for b, n, s in zip(begin[2:], plan.out, plan.strides)]
        taps.append(
            ctx.mb.slice_by_index(
                x=x,
                begin=np.array(begin, np.int32),
                end=np.array(end, np.int32),
                stride=np.array([1, 1] + plan.strides, np.int32),
                begin_mask=[True, True] + [False] * nsp,
                end_mask=[True, True] + [False] * nsp,
            )
        )
    return taps


def _fold(ctx: LowerContext, values: list[Any], op: str) -> Any:
    acc = values[0]
    for v in values[1:]:
        acc = getattr(ctx.mb, op)(x=acc, y=v)
    return acc


def _tap_counts(plan: _Plan, sizes: list[int], include_pad: bool) -> np.ndarray:
    """Per output position, how many taps land on counted elements (numpy, conversion time)."""
    assert plan.pads is not None and plan.out is not None
    mask = np.ones(sizes, np.float64)
    mask = np.pad(mask, plan.pads, constant_values=1.0 if include_pad else 0.0)
    mask = np.pad(mask, [(0, o) for o in plan.overhang])
    counts = np.zeros(plan.out, np.float64)
    for offsets in itertools.product(*(range(k) for k in plan.kernel)):
        index = tuple(
            slice(o * d, o * d + (n - 1) * s + 1, s)
            for o, d, n, s in zip(offsets, plan.dilations, plan.out, plan.strides)
        )
        counts += mask[index]
    return counts


@onnx_op("MaxPool", since=1)
def max_pool(ctx: LowerContext, node: Node) -> Any:
    """y = max over each (dilated) window; padding never wins.  MIL: max_pool; dilations: pad, slices, maximum.

    Limits: the Indices output (opset 8+) has no MIL equivalent; integer inputs go through fp32
    (exact for int8/uint8).
    """
    if len(node.output_names) > 1 and node.output_names[1]:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: the Indices output of MaxPool has no Core ML equivalent; "
            "drop it from the model (e.g. export max_pool without return_indices)"
        )
    x, dtype = _float_input(ctx, node.input(0))
    plan = _Plan(ctx, node, x)
    if plan.dilated:
        y = _fold(ctx, _taps(ctx, node, plan, x, -np.inf), "maximum")
    else:
        y = ctx.mb.max_pool(x=x, **plan.mil_kwargs())
    return ctx.cast(y, dtype)


@composite_op("AveragePool", since=1)
def average_pool(ctx: LowerContext, node: Node) -> Any:
    """y = sum(window) / count; count includes pads iff count_include_pad.  MIL: avg_pool.

    Composite where the average counts padding but ceil mode adds an uncounted overhang: the
    input is zero-padded first (pad) and the pool then excludes only the overhang.  Dilated
    windows (opset 19): pad, one slice per tap, add chain, times a constant 1/count map.
    """
    x = node.input(0)
    plan = _Plan(ctx, node, x)
    include = bool(node.attrs.get("count_include_pad", 0))
    if plan.dilated:
        dims = static_dims(x)
        assert dims is not None
        total = _fold(ctx, _taps(ctx, node, plan, x, 0.0), "add")
        counts = _tap_counts(plan, dims[2:], include)
        return ctx.mb.mul(x=total, y=ctx.const((1.0 / counts).astype(ctx.np_dtype(x))))
    if include and any(plan.overhang) and plan.pads is not None:
        padded = ctx.mb.pad(
            x=x,
            pad=mil_pad([(0, 0), (0, 0)] + plan.pads),
            mode="constant",
            constant_val=ctx.scalar_like(x, 0),
        )
        kw = plan.mil_kwargs()
        kw["pad"] = mil_pad([(0, o) for o in plan.overhang])
        kw["pad_type"] = "custom"
        return ctx.mb.avg_pool(x=padded, exclude_padding_from_average=True, **kw)
    return ctx.mb.avg_pool(x=x, exclude_padding_from_average=not include, **plan.mil_kwargs())


def _lp_order(node: Node) -> float:
    p = float(node.attrs.get("p", 2))
    if p <= 0:
        raise UnsupportedOpError(f"lower: {node.describe()}: p={p} must be positive; fix the model")
    return p


def _abs_pow(ctx: LowerContext, x: Any, p: float) -> Any:
    """|x|^p with the cheapest exact ops (square for 2, abs for 1)."""
    if p == 2.0:
        return ctx.mb.square(x=x)
    ax = ctx.mb.abs(x=x)
    return ax if p == 1.0 else ctx.mb.pow(x=ax, y=ctx.scalar_like(x, p))


def _root(ctx: LowerContext, s: Any, p: float) -> Any:
    if p == 1.0:
        return s
    if p == 2.0:
        return ctx.mb.sqrt(x=s)
    return ctx.mb.pow(x=s, y=ctx.scalar_like(s, 1.0 / p))


@composite_op("LpPool", since=1)
def lp_pool(ctx: LowerContext, node: Node) -> Any:
    """y = (sum over window of |x|^p)^(1/p); pads add 0.  MIL: l2_pool for p=2 in 1-D/2-D.

    Other p: |x|^p, avg_pool counting every window slot, times the kernel size, then ^(1/p)
    (abs/pow, avg_pool, mul, pow).  Dilated windows: slices and an add chain instead of the pool.
    """
    x = node.input(0)
    p = _lp_order(node)
    plan = _Plan(ctx, node, x)
    if plan.dilated:
        total = _fold(ctx, _taps(ctx, node, plan, _abs_pow(ctx, x, p), 0.0), "add")
        return _root(ctx, total, p)
    if p == 2.0 and x.rank <= 4:
        return ctx.mb.l2_pool(x=x, **plan.mil_kwargs())
    avg = ctx.mb.avg_pool(
        x=_abs_pow(ctx, x, p), exclude_padding_from_average=False, **plan.mil_kwargs()
    )
    total = ctx.mb.mul(x=avg, y=ctx.scalar_like(x, math.prod(plan.kernel)))
    return _root(ctx, total, p)


def _spatial_axes(node: Node, x: Any) -> list[int]:
    if x.rank < 3:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: needs an input of rank >= 3 (N, C, spatial...)"
        )
    return list(range(2, x.rank))


@onnx_op("GlobalAveragePool", since=1)
def global_average_pool(ctx: LowerContext, node: Node) -> Any:
    """y[n, c] = mean over all spatial positions (kept as size-1 dims).  MIL: reduce_mean."""
    x = node.input(0)
    return ctx.mb.reduce_mean(x=x, axes=_spatial_axes(node, x), keep_dims=True)


@onnx_op("GlobalMaxPool", since=1)
def global_max_pool(ctx: LowerContext, node: Node) -> Any:
    """y[n, c] = max over all spatial positions (kept as size-1 dims).  MIL: reduce_max."""
    x = node.input(0)
    return ctx.mb.reduce_max(x=x, axes=_spatial_axes(node, x), keep_dims=True)


@onnx_op("GlobalLpPool", since=1)
def global_lp_pool(ctx: LowerContext, node: Node) -> Any:
    """y[n, c] = (sum over spatial positions of |x|^p)^(1/p).  MIL: reduce_l2_norm / reduce_l1_norm; other p: abs, pow, reduce_sum, pow."""
    x = node.input(0)
    p = _lp_order(node)
    axes = _spatial_axes(node, x)
    if p == 2.0:
        return ctx.mb.reduce_l2_norm(x=x, axes=axes, keep_dims=True)
    if p == 1.0:
        return ctx.mb.reduce_l1_norm(x=x, axes=axes, keep_dims=True)
    return _root(ctx, ctx.mb.reduce_sum(x=_abs_pow(ctx, x, p), axes=axes, keep_dims=True), p)
