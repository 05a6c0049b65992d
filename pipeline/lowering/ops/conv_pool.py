"""Convolutions: Conv, ConvTranspose (1-D to 3-D), and the padding geometry pooling shares.

Both map to one MIL op (``conv`` / ``conv_transpose``) when the ONNX padding is expressible;
ONNX ``auto_pad`` SAME_* is turned into explicit pads whenever the spatial sizes are static, so
the program never depends on how a runtime rounds "same" padding.

Spec changes read: Conv 1, 11 (auto_pad pads computed from the output size; kernel_shape may be
omitted), 22 (types only).  ConvTranspose 1, 11 (output_shape / auto_pad pad rule restated), 22
(types only).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.registry import composite_op, onnx_op

log = logging.getLogger(__name__)


def static_dims(var: Any) -> list[int] | None:
    """``var``'s shape as ints, or None when any dimension is symbolic."""
    dims = list(var.shape)
    if all(isinstance(d, (int, np.integer)) for d in dims):
        return [int(d) for d in dims]
    return None


def per_dim(node: Node, name: str, nsp: int, fill: int) -> list[int]:
    """An ONNX per-spatial-dim attribute (strides, dilations, ...) with its default ``fill``."""
    value = node.attrs.get(name)
    if value is None or len(value) == 0:
        return [fill] * nsp
    if len(value) != nsp:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: {name}={list(value)} has {len(value)} values for "
            f"{nsp} spatial dims; fix the model"
        )
    return [int(v) for v in value]


def onnx_pads(node: Node, nsp: int) -> list[tuple[int, int]]:
    """ONNX ``pads`` ([b0, b1, .., e0, e1, ..]) as (before, after) per spatial dim."""
    pads = node.attrs.get("pads")
    if pads is None or len(pads) == 0:
        return [(0, 0)] * nsp
    if len(pads) != 2 * nsp:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: pads={list(pads)} needs {2 * nsp} values; fix the model"
        )
    return [(int(pads[i]), int(pads[i + nsp])) for i in range(nsp)]


def same_pads(
    sizes: list[int], kernel: list[int], strides: list[int], dilations: list[int], upper: bool
) -> list[tuple[int, int]]:
    """SAME_UPPER / SAME_LOWER pads: output ceil(D/s), total = (out-1)*s + (k-1)*d + 1 - D."""
    out = []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max(0, (math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size)
        small, big = total // 2, total - total // 2
        out.append((small, big) if upper else (big, small))
    return out


def resolve_padding(
    node: Node, x: Any, kernel: list[int], strides: list[int], dilations: list[int]
) -> tuple[str, list[tuple[int, int]] | None]:
    """MIL ``pad_type`` and explicit pads for a conv/pool node's ``auto_pad`` and ``pads``.

    SAME_* becomes ``custom`` when the spatial sizes are static, else MIL ``same``/``same_lower``
    (whose rule is the ONNX one).  Returns ("custom", pads) or (pad_type, None).
    """
    nsp = len(kernel)
    auto = str(node.attrs.get("auto_pad", "NOTSET") or "NOTSET").upper()
    if auto == "VALID":
        return "custom", [(0, 0)] * nsp
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        dims = static_dims(x)
        if dims is None:
            return ("same" if auto == "SAME_UPPER" else "same_lower"), None
        return "custom", same_pads(dims[2:], kernel, strides, dilations, auto == "SAME_UPPER")
    if auto != "NOTSET":
        raise UnsupportedOpError(
            f"lower: {node.describe()}: auto_pad={auto!r} is not a valid value; fix the model"
        )
    return "custom", onnx_pads(node, nsp)


def mil_pad(pads: list[tuple[int, int]]) -> np.ndarray:
    """(before, after) per dim as MIL's flat [b0, a0, b1, a1, ...] int32 vector."""
    return np.array([p for pair in pads for p in pair], np.int32)


def channel_bias(ctx: LowerContext, bias: Any, nsp: int) -> Any:
    """A [C] bias reshaped to [C, 1, ...] so it broadcasts over the spatial dims of NC* output."""
    val = ctx.value_of(bias)
    if val is not None:
        return ctx.const(val.reshape((-1,) + (1,) * nsp))
    return ctx.mb.expand_dims(x=bias, axes=list(range(1, nsp + 1)))


def _kernel_of(node: Node, weight: Any, nsp: int) -> list[int]:
    shape = node.attrs.get("kernel_shape")
    wdims = list(weight.shape[2:])
    if shape:
        return [int(v) for v in shape]
    if all(isinstance(d, (int, np.integer)) for d in wdims):
        return [int(d) for d in wdims]
    raise UnsupportedOpError(
        f"lower: {node.describe()}: the weight's kernel size is unknown at conversion time and "
        "kernel_shape is absent; make the weight shape static"
    )


@onnx_op("Conv", since=1)
def conv(ctx: LowerContext, node: Node) -> Any:
    """y[n, o] = sum_{c in group(o), k} x_pad[n, c, s*i + d*k] * w[o, c, k] + b[o].  MIL: conv.

    Limits: a weight computed at run time needs all dilations 1 (a MIL constraint); a bias
    computed at run time is added by a separate add before iOS17.
    """
    x, weight, bias = node.input(0), node.input(1), node.input(2)
    nsp = x.rank - 2
    if nsp not in (1, 2, 3):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: MIL conv handles 1-3 spatial dims, got {nsp}"
        )
    kernel = _kernel_of(node, weight, nsp)
    strides = per_dim(node, "strides", nsp, 1)
    dilations = per_dim(node, "dilations", nsp, 1)
    if ctx.value_of(weight) is None and any(d != 1 for d in dilations):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: a dilated conv needs a constant weight in Core ML; make the "
            "weight an initializer"
        )
    pad_type, pads = resolve_padding(node, x, kernel, strides, dilations)
    kwargs: dict[str, Any] = {
        "x": x,
        "weight": weight,
        "strides": np.array(strides, np.int32),
        "dilations": np.array(dilations, np.int32),
        "groups": np.int32(node.attrs.get("group", 1)),
        "pad_type": pad_type,
    }
    if pads is not None:
        if not any(p for pair in pads for p in pair):
            kwargs["pad_type"] = "valid"
        else:
            kwargs["pad"] = mil_pad(pads)
    late_bias = None
    if bias is not None:
        if ctx.value_of(bias) is not None or ctx.target >= 17:
            kwargs["bias"] = bias
        else:
            late_bias = bias
    y = ctx.mb.conv(**kwargs)
    if late_bias is not None:
        y = ctx.mb.add(x=y, y=channel_bias(ctx, late_bias, nsp))
    return y


def _transpose_pads(
    node: Node,
    x: Any,
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
    out_pad: list[int],
) -> list[tuple[int, int]]:
    """(crop before, crop after) per dim of ConvTranspose's full output, after output_padding.

    ONNX: out = s*(D-1) + output_padding + (k-1)*d + 1 - pad_begin - pad_end.  With output_shape
    (or SAME_*: output D*s) the total pad is derived and split: SAME_UPPER puts the odd extra at
    the end, otherwise at the beginning.  A negative crop means zero-extension.
    """
    nsp = len(kernel)
    auto = str(node.attrs.get("auto_pad", "NOTSET") or "NOTSET").upper()
    out_shape = node.attrs.get("output_shape")
    if not out_shape and auto not in ("SAME_UPPER", "SAME_LOWER"):
        pads = [(0, 0)] * nsp if auto == "VALID" else onnx_pads(node, nsp)
        return [(b, e - op) for (b, e), op in zip(pads, out_pad)]
    dims = static_dims(x)
    if dims is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: output_shape/auto_pad={auto} need static spatial input "
            "sizes; fix the input shape (--input NAME:SHAPE)"
        )
    sizes = dims[2:]
    wanted = (
        [int(v) for v in out_shape][-nsp:] if out_shape else [d * s for d, s in zip(sizes, strides)]
    )
    crops = []
    for size, k, s, d, op, want in zip(sizes, kernel, strides, dilations, out_pad, wanted):
        total = s * (size - 1) + op + (k - 1) * d + 1 - want
        if auto == "SAME_UPPER":
            begin, end = total // 2, total - total // 2
        else:
            begin, end = total - total // 2, total // 2
        crops.append((begin, end - op))
    return crops


@composite_op("ConvTranspose", since=1)
def conv_transpose(ctx: LowerContext, node: Node) -> Any:
    """y = conv gradient of x with w [C_in, C_out/g, k..], cropped by pads, + b.  MIL: conv_transpose.

    Composite only where ONNX extends past the full output (output_padding beyond the end pad,
    or a larger output_shape): conv_transpose without bias, pad with zeros, add the bias, so the
    extension holds exactly the bias as ONNX says.
    Limits: a weight computed at run time needs iOS17; output_shape/auto_pad need static sizes;
    a bias computed at run time is a separate add.
    """
    x, weight, bias = node.input(0), node.input(1), node.input(2)
    nsp = x.rank - 2
    if nsp not in (1, 2, 3):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: MIL conv_transpose handles 1-3 spatial dims, got {nsp}"
        )
    if ctx.value_of(weight) is None:
        ctx.require_target(17, "ConvTranspose with a weight computed at run time")
    kernel = _kernel_of(node, weight, nsp)
    strides = per_dim(node, "strides", nsp, 1)
    dilations = per_dim(node, "dilations", nsp, 1)
    out_pad = per_dim(node, "output_padding", nsp, 0)
    crops = _transpose_pads(node, x, kernel, strides, dilations, out_pad)
    extend = [(max(0, -b), max(0, -e)) for b, e in crops]
    crops = [(max(0, b), max(0, e)) for b, e in crops]
    kwargs: dict[str, Any] = {
        "x": x,
        "weight": weight,
        "strides": np.array(strides, np.int32),
        "dilations": np.array(dilations, np.int32),
        "groups": np.int32(node.attrs.get("group", 1)),
    }
    if any(p for pair in crops for p in pair):
        kwargs["pad_type"], kwargs["pad"] = "custom", mil_pad(crops)
    else:
        kwargs["pad_type"] = "valid"
    needs_extend = any(p for pair in extend for p in pair)
    bias_is_const = bias is not None and ctx.value_of(bias) is not None
    # coremltools' conv_transpose type inference reads the bias value: a run-time bias is added.
    if bias_is_const and not needs_extend:
        return ctx.mb.conv_transpose(bias=bias, **kwargs)
    y = ctx.mb.conv_transpose(**kwargs)
    if needs_extend:
        y = ctx.mb.pad(
            x=y,
            pad=mil_pad([(0, 0), (0, 0)] + extend),
            mode="constant",
            constant_val=ctx.scalar_like(x, 0),
        )
    if bias is not None:
        y = ctx.mb.add(x=y, y=channel_bias(ctx, bias, nsp))
    return y
