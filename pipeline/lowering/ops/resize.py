"""Resizing: Resize (opsets 10, 11, 13, 18, 19) and the deprecated Upsample (opsets 7, 9).

Spec changes read: Upsample 7 (scales attribute), 9 (scales input), deprecated at 10;
Resize 10 (X, scales; nearest/linear, asymmetric), 11 (roi, sizes, coordinate transformation
modes, cubic, nearest_mode, exclude_outside, extrapolation_value), 13 (roi/scales optional,
tf_half_pixel_for_nn removed), 18 (antialias, axes, keep_aspect_ratio_policy), 19
(half_pixel_symmetric).

Strategy: every resized axis gets its exact ONNX interpolation table at conversion time
(:mod:`resize_tables`).  When the resized axes are the last two and MIL's native op computes the
same table (proved by comparing tables, not by matching attribute names), the node becomes one
native op: ``upsample_nearest_neighbor`` / ``resize_nearest_neighbor`` (nearest) or
``upsample_bilinear`` / ``resize_bilinear`` (linear, any sampling mode whose grid matches).
Otherwise it becomes a separable composite, one step per resized axis: ``gather`` with a constant
index vector for nearest (exact, any dtype) and ``matmul`` with a constant weight matrix for
linear/cubic/antialias/tf_crop_and_resize (matmul runs on the Neural Engine, the weights fold the
whole coordinate/kernel computation, and it is exact up to fp rounding of the weights).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.ops.resize_tables import (
    MIL_SAMPLING_MODES,
    AxisSpec,
    extrapolated,
    mil_linear_matrix,
    mil_nearest_indices,
    nearest_indices,
    same_matrix,
    weight_matrix,
)
from pipeline.lowering.registry import onnx_op

log = logging.getLogger(__name__)

_F32 = np.float32


def _static_shape(node: Node, x: Any) -> list[int]:
    shape = list(x.shape)
    if any(not isinstance(d, (int, np.integer)) for d in shape):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: input shape {shape} is not static; Resize needs static "
            "spatial sizes to build its interpolation tables. Export with fixed input shapes"
        )
    return [int(d) for d in shape]


def _const(node: Node, i: int, what: str) -> np.ndarray | None:
    """Input ``i`` as a numpy array, None when omitted or empty; raise when dynamic."""
    if not node.has_input(i):
        return None
    val = node.const_input(i)
    if val is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: {what} is computed at run time; only constant {what} "
            "can be lowered. Export with static sizes (or fold the shape computation)"
        )
    return None if val.size == 0 else val


def _axis_sizes(
    node: Node, shape: list[int], scales: np.ndarray | None, sizes: np.ndarray | None, axes: list[int]
) -> tuple[list[int], list[float]]:
    """Output size and scale per axis (ONNX: floor(in*scale), or sizes with scale = out/in)."""
    rank = len(shape)
    out, scale = list(shape), [1.0] * rank
    if sizes is not None:
        if sizes.size != len(axes):
            raise UnsupportedOpError(f"lower: {node.describe()}: sizes has {sizes.size} values for {len(axes)} axes")
        for ax, size in zip(axes, sizes.tolist()):
            out[ax], scale[ax] = int(size), float(_F32(size) / _F32(shape[ax]))
        policy = node.attr("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            pick = min if policy == "not_larger" else max
            common = pick(scale[ax] for ax in axes)
            for ax in axes:
                scale[ax] = common
                out[ax] = math.floor(common * shape[ax] + 0.5)  # round half up (spec)
        return out, scale
    if scales is None:
        raise UnsupportedOpError(f"lower: {node.describe()}: neither scales nor sizes is given; fix the model")
    if scales.size != len(axes):
        raise UnsupportedOpError(f"lower: {node.describe()}: scales has {scales.size} values for {len(axes)} axes")
    for ax, s in zip(axes, scales.astype(_F32).tolist()):
        scale[ax] = float(s)
        out[ax] = math.floor(float(_F32(s) * _F32(shape[ax])))
    return out, scale


def _check_attrs(node: Node, mode: str, transform: str) -> None:
    if mode not in ("nearest", "linear", "cubic"):
        raise UnsupportedOpError(f"lower: {node.describe()}: mode={mode!r} is not nearest, linear or cubic; fix the model")
    known = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
             "tf_crop_and_resize", "tf_half_pixel_for_nn")
    if transform not in known:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: coordinate_transformation_mode={transform!r} is unknown; "
            f"use one of {', '.join(known)}"
        )


def _is_identity(spec: AxisSpec) -> bool:
    if spec.out != spec.length or extrapolated(spec).any():
        return False
    if spec.mode == "nearest":
        return bool(np.array_equal(nearest_indices(spec), np.arange(spec.length)))
    return same_matrix(weight_matrix(spec), np.eye(spec.length))


def _native(ctx: LowerContext, x: Any, specs: dict[int, AxisSpec], rank: int, shape: list[int]) -> Any | None:
    """One native MIL op computing the same tables on the last two axes, else None."""
    if rank < 3 or not ctx.is_float(x) or any(ax < rank - 2 for ax in specs):
        return None
    if any(extrapolated(s).any() for s in specs.values()):
        return None
    full = {ax: specs.get(ax) for ax in (rank - 2, rank - 1)}
    lengths = [shape[rank - 2], shape[rank - 1]]
    outs = [s.out if s else n for s, n in zip(full.values(), lengths)]
    modes = {s.mode for s in specs.values()}
    if modes == {"nearest"}:
        for spec, n, o in zip(full.values(), lengths, outs):
            ref = nearest_indices(spec) if spec else np.arange(n)
            if not np.array_equal(ref, mil_nearest_indices(n, o)):
                return None
        if all(o % n == 0 for o, n in zip(outs, lengths)):
            return ctx.mb.upsample_nearest_neighbor(
                x=x, scale_factor_height=np.int32(outs[0] // lengths[0]), scale_factor_width=np.int32(outs[1] // lengths[1])
            )
        return ctx.mb.resize_nearest_neighbor(x=x, target_size_height=outs[0], target_size_width=outs[1])
    if len(modes) != 1:
        return None
    tables = [weight_matrix(s) if s else np.eye(n) for s, n in zip(full.values(), lengths)]
    for mode in MIL_SAMPLING_MODES:
        if all(same_matrix(t, mil_linear_matrix(mode, n, o)) for t, n, o in zip(tables, lengths, outs)):
            integral = all(o % n == 0 for o, n in zip(outs, lengths))
            if integral and mode in ("UNALIGN_CORNERS", "STRICT_ALIGN_CORNERS"):
                return ctx.mb.upsample_bilinear(
                    x=x, scale_factor_height=np.int32(outs[0] // lengths[0]),
                    scale_factor_width=np.int32(outs[1] // lengths[1]),
                    align_corners=mode == "STRICT_ALIGN_CORNERS",
                )
            return ctx.mb.resize_bilinear(x=x, target_size_height=outs[0], target_size_width=outs[1], sampling_mode=mode)
    return None


def _apply_matrix(ctx: LowerContext, x: Any, weights: np.ndarray, axis: int, shape: list[int]) -> Any:
    """y = W applied along ``axis``: one matmul (plus two reshapes for an axis before the last two)."""
    dtype = ctx.np_dtype(x)
    rank = len(shape)
    if axis == rank - 1:
        return ctx.mb.matmul(x=x, y=ctx.const(weights.T.astype(dtype)))
    if axis == rank - 2:
        return ctx.mb.matmul(x=ctx.const(weights.astype(dtype)), y=x)
    before, after = int(np.prod(shape[:axis])), int(np.prod(shape[axis + 1:]))
    folded = ctx.mb.reshape(x=x, shape=np.array([before, shape[axis], after], np.int32))
    mixed = ctx.mb.matmul(x=ctx.const(weights.astype(dtype)), y=folded)
    new_shape = shape[:axis] + [weights.shape[0]] + shape[axis + 1:]
    return ctx.mb.reshape(x=mixed, shape=np.array(new_shape, np.int32))


def _composite(ctx: LowerContext, node: Node, x: Any, specs: dict[int, AxisSpec], shape: list[int], extrapolation: float) -> Any:
    """Separable composite: gather (nearest) or matmul (weights) per axis, then extrapolation."""
    rank = len(shape)
    cur = list(shape)
    masks = {ax: extrapolated(s) for ax, s in specs.items()}
    needs_weights = any(s.mode != "nearest" for s in specs.values()) or any(m.any() for m in masks.values())
    if needs_weights and not ctx.is_float(x):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: mode={node.attr('mode')!r} on {ctx.np_dtype(x)} input has no exact "
            "MIL form (only nearest resizes integers). Cast the input to float in the model"
        )
    y = x
    for ax, spec in specs.items():
        if spec.mode == "nearest" and not masks[ax].any():
            y = ctx.mb.gather(x=y, indices=nearest_indices(spec).astype(np.int32), axis=ax)
        else:
            y = _apply_matrix(ctx, y, weight_matrix(spec), ax, cur)
        cur[ax] = spec.out
    if any(m.any() for m in masks.values()):
        valid = np.ones([1] * rank, dtype=np.float64)
        for ax, mask in masks.items():
            valid = valid * (~mask).astype(np.float64).reshape([-1 if i == ax else 1 for i in range(rank)])
        fill = (extrapolation * (1.0 - valid)).astype(ctx.np_dtype(x))
        y = ctx.mb.add(x=y, y=ctx.const(fill))
    return y


def resize_to(ctx: LowerContext, node: Node, x: Any, scales: np.ndarray | None, sizes: np.ndarray | None,
              roi: np.ndarray | None, **attrs: Any) -> Any:
    """Lower one Resize given its constant scales/sizes/roi and (normalised) attributes."""
    shape = _static_shape(node, x)
    rank = len(shape)
    mode, transform = attrs["mode"], attrs["transform"]
    _check_attrs(node, mode, transform)
    axes = [a % rank for a in (node.attr("axes") or range(rank))]
    out, scale = _axis_sizes(node, shape, scales, sizes, axes)
    if roi is not None and roi.size not in (0, 2 * len(axes)):
        raise UnsupportedOpError(f"lower: {node.describe()}: roi has {roi.size} values, expected {2 * len(axes)}")
    specs: dict[int, AxisSpec] = {}
    for k, ax in enumerate(axes):
        lo_hi = (0.0, 1.0) if roi is None or transform != "tf_crop_and_resize" else (
            float(roi[k]), float(roi[len(axes) + k]))
        spec = AxisSpec(
            shape[ax], out[ax], scale[ax], mode, transform, attrs.get("nearest_mode", "round_prefer_floor"),
            float(attrs.get("cubic_a", -0.75)), bool(attrs.get("exclude_outside", 0)),
            bool(attrs.get("antialias", 0)) and mode != "nearest", lo_hi,
        )
        if out[ax] <= 0:
            raise UnsupportedOpError(f"lower: {node.describe()}: output size {out[ax]} on axis {ax}; fix scales/sizes")
        if not _is_identity(spec):
            specs[ax] = spec
    if not specs:
        return ctx.mb.identity(x=x)
    native = _native(ctx, x, specs, rank, shape)
    if native is not None:
        return native
    return _composite(ctx, node, x, specs, shape, float(attrs.get("extrapolation", 0.0)))


def _attrs(node: Node) -> dict[str, Any]:
    return {
        "mode": node.attr("mode", "nearest"),
        "transform": node.attr("coordinate_transformation_mode", "half_pixel"),
        "nearest_mode": node.attr("nearest_mode", "round_prefer_floor"),
        "cubic_a": node.attr("cubic_coeff_a", -0.75),
        "exclude_outside": node.attr("exclude_outside", 0),
        "antialias": node.attr("antialias", 0),
        "extrapolation": node.attr("extrapolation_value", 0.0),
    }


@onnx_op("Resize", since=11)
@onnx_op("Resize", since=13)
@onnx_op("Resize", since=18)
@onnx_op("Resize", since=19)
def resize(ctx: LowerContext, node: Node) -> Any:
    """Y = separable interpolation of X to sizes (or floor(in*scales)) per the node's modes.

    MIL: one upsample/resize_{nearest_neighbor,bilinear} when its table equals the ONNX one;
    otherwise gather (nearest) / matmul (linear, cubic, antialias, tf_crop_and_resize) per axis.
    Limits: scales/sizes/roi must be constants and the resized dimensions static; linear and
    cubic need a float input.
    """
    sizes = _const(node, 3, "sizes")
    scales = None if sizes is not None else _const(node, 2, "scales")
    roi = _const(node, 1, "roi") if node.attr("coordinate_transformation_mode") == "tf_crop_and_resize" else None
    return resize_to(ctx, node, node.input(0), scales, sizes, roi, **_attrs(node))


def _legacy(ctx: LowerContext, node: Node, scales: np.ndarray | None) -> Any:
    """Resize-10 / Upsample: asymmetric coordinates; nearest truncates when upscaling and
    rounds up when downscaling (onnxruntime's reading of the pre-11 spec)."""
    x = node.input(0)
    mode = node.attr("mode", "nearest")
    if mode == "bilinear":  # Upsample-7 accepted 'bilinear' for linear
        mode = "linear"
    if scales is None:
        raise UnsupportedOpError(f"lower: {node.describe()}: scales is missing; fix the model")
    nearest = "ceil" if mode == "nearest" and np.any(scales < 1) else "floor"
    return resize_to(ctx, node, x, scales, None, None, mode=mode, transform="asymmetric", nearest_mode=nearest)


@onnx_op("Resize", since=10)
def resize_v10(ctx: LowerContext, node: Node) -> Any:
    """Y = resize of X by scales with asymmetric coordinates (x_o = i/scale).

    MIL: as Resize-11 (native op when the tables match, else gather/matmul per axis).
    Limits: scales must be constant.
    """
    return _legacy(ctx, node, _const(node, 1, "scales"))


@onnx_op("Upsample", since=7)
def upsample_v7(ctx: LowerContext, node: Node) -> Any:
    """Y = upsampling of X by the scales attribute, asymmetric coordinates.  MIL: as Resize-10."""
    scales = node.attr("scales")
    return _legacy(ctx, node, None if scales is None else np.asarray(scales, _F32))


@onnx_op("Upsample", since=9)
def upsample_v9(ctx: LowerContext, node: Node) -> Any:
    """Y = upsampling of X by the scales input, asymmetric coordinates.  MIL: as Resize-10.

    Limits: scales must be constant.
    """
    return _legacy(ctx, node, _const(node, 1, "scales"))
