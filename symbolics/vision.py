"""torchvision detection ops: roi_pool, ps_roi_align, deform_conv2d.

Found by trying (torch 2.14.1, torchvision 0.29.1, opset 18/19):

* ``torchvision::roi_pool``: dynamo fails (``ConversionError`` at step 3/3: torchlib's
  translation has the wrong signature); TorchScript exports ``MaxRoiPool`` fine.
* ``torchvision::ps_roi_align``: both fail (TorchScript: ``UnsupportedOperatorError:
  unrecognized namespace torchvision::ps_roi_align``; dynamo: ``ConversionError``).
* ``torchvision::deform_conv2d``: TorchScript fails (``UnsupportedOperatorError: unrecognized
  namespace``); dynamo exports ``DeformConv`` (opset 19) fine.
* roi_align and nms export with both; not covered here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from symbolics._common import (
    builtin,
    const,
    ints,
    legacy_ints,
    legacy_shape,
    op,
    opset19,
    static_shape,
)


# -- roi_pool -------------------------------------------------------------------------------
@builtin("torchvision::roi_pool", opset=1)
def roi_pool(
    input: Any, rois: Any, spatial_scale: float, pooled_height: int, pooled_width: int
) -> tuple[Any, Any]:
    """y[k,c,i,j] = max of input[b_k, c] over bin (i, j) of roi k (rois: [K, 5] = b, x1..y2).

    Limits: the second (argmax) output, only used by the backward pass, is zeros.
    """
    out = op.MaxRoiPool(
        input, rois, pooled_shape=[int(pooled_height), int(pooled_width)],
        spatial_scale=float(spatial_scale),
    )
    argmax = op.ConstantOfShape(op.Shape(out), value=ir.tensor(np.zeros(1, np.int32)))
    return out, argmax


# -- ps_roi_align ---------------------------------------------------------------------------
def _channel_mapping(c_out: int, ph: int, pw: int) -> np.ndarray:
    """channel_mapping[0, c, i, j] = c*ph*pw + i*pw + j (torchvision's second output)."""
    return np.arange(c_out * ph * pw, dtype=np.int32).reshape(1, c_out, ph, pw)


def _ps_split(channels: int, ph: int, pw: int) -> tuple[int, int, list[int]]:
    """Output channels, bins, and the flat indices of each bin's own (channel, spatial) pair."""
    bins = ph * pw
    if channels % bins:
        from pipeline.errors import ExportError

        raise ExportError(
            f"symbolics: torchvision::ps_roi_align: {channels} input channels are not a "
            f"multiple of pooled_height*pooled_width={bins}; fix the model's channel count"
        )
    return channels // bins, bins, [b * (bins + 1) for b in range(bins)]


def _ps_roi_align_legacy(
    g: Any, input: Any, rois: Any, spatial_scale: Any, pooled_height: Any, pooled_width: Any,
    sampling_ratio: Any,
) -> tuple[Any, Any]:
    import torch

    ph, pw = const(pooled_height, "i"), const(pooled_width, "i")
    channels = legacy_shape(input, "torchvision::ps_roi_align")[1]
    c_out, bins, diag = _ps_split(channels, ph, pw)
    batch = g.op("Cast", g.op("Squeeze", g.op("Slice", rois, legacy_ints(g, [0]),
                                              legacy_ints(g, [1]), legacy_ints(g, [1])),
                              legacy_ints(g, [1])), to_i=7)
    boxes = g.op("Slice", rois, legacy_ints(g, [1]), legacy_ints(g, [5]), legacy_ints(g, [1]))
    pooled = g.op(
        "RoiAlign", input, boxes, batch, coordinate_transformation_mode_s="half_pixel",
        mode_s="avg", output_height_i=ph, output_width_i=pw,
        sampling_ratio_i=max(const(sampling_ratio, "i"), 0),
        spatial_scale_f=const(spatial_scale, "f"),
    )
    flat = g.op("Reshape", pooled, legacy_ints(g, [-1, c_out, bins * bins]))
    picked = g.op("Gather", flat, legacy_ints(g, diag), axis_i=2)
    out = g.op("Reshape", picked, legacy_ints(g, [-1, c_out, ph, pw]))
    mapping = g.op("Expand", g.op("Constant", value_t=torch.from_numpy(
        _channel_mapping(c_out, ph, pw))), g.op("Shape", out))
    return out, mapping


@builtin("torchvision::ps_roi_align", opset=16, legacy=_ps_roi_align_legacy)
def ps_roi_align(
    input: Any, rois: Any, spatial_scale: float, pooled_height: int, pooled_width: int,
    sampling_ratio: int,
) -> tuple[Any, Any]:
    """y[k,c,i,j] = RoiAlign(input[:, c*PH*PW + i*PW + j], roi k, aligned)[i, j].

    Exact in standard ops: RoiAlign (opset 16, half_pixel = torchvision's -0.5 offset) over all
    channels, then a Gather of each bin's own channel.  Costs PH*PW times the RoiAlign work.
    """
    ph, pw = int(pooled_height), int(pooled_width)
    channels = static_shape(input, "torchvision::ps_roi_align")[1]
    c_out, bins, diag = _ps_split(channels, ph, pw)
    batch = op.Cast(op.Squeeze(op.Slice(rois, ints([0]), ints([1]), ints([1])), ints([1])), to=7)
    boxes = op.Slice(rois, ints([1]), ints([5]), ints([1]))
    pooled = op.RoiAlign(
        input, boxes, batch, coordinate_transformation_mode="half_pixel", mode="avg",
        output_height=ph, output_width=pw, sampling_ratio=max(int(sampling_ratio), 0),
        spatial_scale=float(spatial_scale),
    )
    flat = op.Reshape(pooled, ints([-1, c_out, bins * bins]))
    out = op.Reshape(op.Gather(flat, ints(diag), axis=2), ints([-1, c_out, ph, pw]))
    mapping = op.Expand(op.Constant(value=ir.tensor(_channel_mapping(c_out, ph, pw))),
                        op.Shape(out))
    return out, mapping


# -- deform_conv2d --------------------------------------------------------------------------
def _deform_conv2d_legacy(
    g: Any, input: Any, weight: Any, offset: Any, mask: Any, bias: Any, stride_h: Any,
    stride_w: Any, pad_h: Any, pad_w: Any, dilation_h: Any, dilation_w: Any, groups: Any,
    offset_groups: Any, use_mask: Any,
) -> Any:
    kernel = legacy_shape(weight, "torchvision::deform_conv2d weight")[2:]
    inputs = [input, weight, offset, bias]
    if const(use_mask, "b"):
        inputs.append(mask)
    ph, pw = const(pad_h, "i"), const(pad_w, "i")
    return g.op(
        "DeformConv", *inputs, dilations_i=[const(dilation_h, "i"), const(dilation_w, "i")],
        group_i=const(groups, "i"), offset_group_i=const(offset_groups, "i"),
        kernel_shape_i=kernel, pads_i=[ph, pw, ph, pw],
        strides_i=[const(stride_h, "i"), const(stride_w, "i")],
    )


@builtin("torchvision::deform_conv2d", opset=19, legacy=_deform_conv2d_legacy)
def deform_conv2d(
    input: Any, weight: Any, offset: Any, mask: Any, bias: Any, stride_h: int, stride_w: int,
    pad_h: int, pad_w: int, dilation_h: int, dilation_w: int, groups: int, offset_groups: int,
    use_mask: bool,
) -> Any:
    """y = sum_k w_k * mask_k * bilinear(x, p + p_k + offset_k) + b.  ONNX DeformConv (opset 19)."""
    kernel = static_shape(weight, "torchvision::deform_conv2d weight")[2:]
    extra = (mask,) if use_mask else ()
    return opset19.DeformConv(
        input, weight, offset, bias, *extra, dilations=[int(dilation_h), int(dilation_w)],
        group=int(groups), offset_group=int(offset_groups), kernel_shape=kernel,
        pads=[int(pad_h), int(pad_w), int(pad_h), int(pad_w)],
        strides=[int(stride_h), int(stride_w)],
    )
