"""Unpooling: MaxUnpool.

MaxPool's indices address the flattened pooling input (over N, C and the spatial dims, row-major),
so unpooling is one scatter of the flattened values into a flat zero tensor of the output's size,
reshaped back.  MIL has no unpool op; ``scatter`` (mode update) is the native op that does this.

Spec changes read: MaxUnpool 9 (introduced, optional output_shape input), 11 (same semantics,
clarified output size), 22 (bfloat16).  Default output size per spatial dim:
``(in - 1) * stride - pad_begin - pad_end + kernel``.
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


def _output_shape(node: Node, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The unpooled shape: the output_shape input when given, else the attribute formula."""
    given = node.const_input(2) if node.has_input(2) else None
    if node.has_input(2) and given is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: output_shape is computed at run time; Core ML needs it "
            "constant (fold it with onnxsim or fix the input shape with --input)"
        )
    if given is not None:
        return tuple(int(v) for v in np.asarray(given).reshape(-1))
    spatial = len(in_shape) - 2
    kernel = list(node.attrs.get("kernel_shape") or [])
    if len(kernel) != spatial:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: kernel_shape {kernel} does not match {spatial} spatial dims; fix the model"
        )
    strides = list(node.attrs.get("strides") or [1] * spatial)
    pads = list(node.attrs.get("pads") or [0] * (2 * spatial))
    dims = [
        (in_shape[2 + i] - 1) * strides[i] - pads[i] - pads[spatial + i] + kernel[i] for i in range(spatial)
    ]
    return (in_shape[0], in_shape[1], *dims)


@composite_op("MaxUnpool", since=9)
def max_unpool(ctx: LowerContext, node: Node) -> Any:
    """y = zeros(out_shape); y.flat[I.flat] = X.flat.

    MIL: reshape X and I to 1-D, scatter (mode update) into a zero constant, reshape: 3 ops
    (the zeros are a constant).  Exact (a copy).
    Limits: X needs a static shape, output_shape a constant; with output_shape the flat indices
    address that grid, as in onnxruntime and PyTorch (onnx's reference reads them in the inferred
    grid and pads, which its node test expects); indices from overlapping pools
    (duplicates) keep one of the written values, as onnxruntime's kernel does.
    """
    mb = ctx.mb
    x, indices = node.input(0), node.input(1)
    in_shape = static_shape(x)
    if in_shape is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: X has run-time dimensions; MaxUnpool needs a static shape "
            "(fix it with --input)"
        )
    out_shape = _output_shape(node, in_shape)
    total = int(np.prod(out_shape))
    zeros = ctx.const(np.zeros((total,), dtype=ctx.np_dtype(x)))
    flat_x = mb.reshape(x=x, shape=np.array([-1], np.int32))
    flat_i = mb.reshape(x=ctx.cast(indices, np.int32), shape=np.array([-1], np.int32))
    scattered = mb.scatter(data=zeros, indices=flat_i, updates=flat_x, axis=0, mode="update")
    return mb.reshape(x=scattered, shape=np.array(out_shape, np.int32))
