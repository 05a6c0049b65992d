"""ONNX op handlers, one module per op family.  Importing this package registers them all."""

from pipeline.lowering.ops import (  # noqa: F401
    constant,
    elementwise,
    math_unary,
    logical,
    activation,
    softmax,
    reduction,
)
