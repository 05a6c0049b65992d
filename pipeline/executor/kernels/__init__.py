"""Executor kernels, one module per MIL op family (named like coremltools' defs files).

Importing this package registers them all; the list is explicit, no scanning.
"""

from pipeline.executor.kernels import (  # noqa: F401
    activation,
    classify,
    constexpr_ops,
    control_flow,
    conv,
    custom_layer,
    elementwise_binary,
    elementwise_unary,
    image_resizing,
    linear,
    normalization,
    pool,
    quantization_ops,
    random,
    recurrent,
    reduction,
    scatter_gather,
    state,
    tensor_operation,
    tensor_transformation,
    transformers,
)
from pipeline.executor.kernels.registry import KERNELS, mil_kernel

__all__ = ["KERNELS", "mil_kernel"]
