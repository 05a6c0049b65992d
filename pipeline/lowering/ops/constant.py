"""Constants and pass-through ops: Constant, Identity.

ONNX ``Constant`` carries its value in one of several attributes (value, value_float(s),
value_int(s), value_string(s) - strings have no Core ML form).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.registry import onnx_op


@onnx_op("Constant", since=1)
def constant(ctx: LowerContext, node: Node) -> Any:
    """y = the attribute's tensor.  MIL: const."""
    for key, dtype in (("value", None), ("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if node.has_attr(key):
            return ctx.const(np.asarray(node.attr(key), dtype=dtype))
    raise UnsupportedOpError(f"lower: {node.describe()}: string/sparse constants have no Core ML form")


@onnx_op("Identity", since=1)
def identity(ctx: LowerContext, node: Node) -> Any:
    """y = x.  MIL: nothing (the value is aliased); the driver adds an identity where an output needs its own name."""
    return node.input(0)
