"""Helpers shared by the symbolic families: the built-in decorator, constants and static shapes
for both exporters.  No op lives here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import onnx_ir as ir
import onnxscript

from pipeline.errors import ExportError

# onnxscript's opsets are typed per ONNX type constraint, which traced values (ir.Value) do not
# carry; the families use these untyped aliases so mypy checks our code, not the op stubs.
op: Any = onnxscript.opset18
opset19: Any = onnxscript.opset19


def builtin(
    name: str,
    *,
    opset: int = 18,
    legacy: Callable[..., Any] | None = None,
    targets: Iterable[str] | None = None,
    default: bool = True,
    emits: Iterable[str] = (),
    helpers: Mapping[str, Callable[..., Any]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The project's own :func:`symbolics.symbolic` (``user=False``, so users can override)."""
    from symbolics import symbolic

    return symbolic(
        name, opset=opset, legacy=legacy, targets=targets, default=default, emits=emits,
        helpers=helpers, user=False,
    )


# -- dynamo (onnxscript tracing) ---------------------------------------------------------------
def ints(values: Sequence[int]) -> Any:
    """A 1-D int64 Constant."""
    return op.Constant(value=ir.tensor(np.asarray(list(values), dtype=np.int64)))


def scalar_like(value: float, dtype: np.dtype | type) -> Any:
    """A 0-d Constant of ``dtype``."""
    return op.Constant(value=ir.tensor(np.asarray(value, dtype=dtype)))


def np_dtype(x: Any) -> np.dtype:
    """The numpy dtype of a traced ONNX value (float32 if unknown)."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return np.dtype(np.float32)
    return np.dtype(dtype.numpy())


def static_shape(x: Any, what: str) -> list[int]:
    """The fully static shape of a traced value, or ExportError naming ``what``."""
    shape = getattr(x, "shape", None)
    dims = list(shape) if shape is not None else None
    if dims is None or not all(isinstance(d, int) for d in dims):
        raise ExportError(
            f"symbolics: {what} needs a static input shape, got {dims}; "
            "export with static shapes for this input"
        )
    return [int(d) for d in dims]


# -- legacy (TorchScript symbolic functions) ----------------------------------------------------
def const(value: Any, desc: str) -> Any:
    """A constant argument of a TorchScript symbolic as Python (``desc``: i, f, b, is, fs, s)."""
    from torch.onnx._internal.torchscript_exporter import symbolic_helper

    if symbolic_helper._is_none(value):
        return None
    return symbolic_helper._maybe_get_const(value, desc)  # type: ignore[arg-type]


def legacy_shape(value: Any, what: str) -> list[int]:
    """The static shape of a TorchScript value, or ExportError naming ``what``."""
    from torch.onnx._internal.torchscript_exporter import symbolic_helper

    sizes = symbolic_helper._get_tensor_sizes(value, allow_nonstatic=False)
    if sizes is None:
        raise ExportError(
            f"symbolics: {what} needs a static input shape; export with static shapes"
        )
    return [int(s) for s in sizes]


def legacy_ints(g: Any, values: Sequence[int]) -> Any:
    """A 1-D int64 Constant in a TorchScript graph."""
    import torch

    return g.op("Constant", value_t=torch.tensor(list(values), dtype=torch.int64))


def legacy_scalar(g: Any, value: float, dtype: Any) -> Any:
    """A 0-d Constant of torch ``dtype`` in a TorchScript graph."""
    import torch

    return g.op("Constant", value_t=torch.tensor(value, dtype=dtype))


def legacy_dtype(value: Any) -> Any:
    """The torch dtype of a TorchScript value (float32 if unknown)."""
    import torch

    scalar = value.type().scalarType() if value.type() is not None else None
    return getattr(torch, {"Float": "float32", "Double": "float64", "Half": "float16",
                           "BFloat16": "bfloat16", "Long": "int64", "Int": "int32"}.get(
        scalar or "Float", "float32"))


def onnx_type(dtype: Any) -> int:
    """The ONNX TensorProto type of a torch dtype (the dynamo exporter may pass an ir.DataType)."""
    import torch

    if isinstance(dtype, ir.DataType):
        return int(dtype)
    return int(ir.DataType.from_numpy(torch.empty(0, dtype=dtype).numpy().dtype))


def legacy_onnx_type(scalar_type: int) -> int:
    """The ONNX TensorProto type of a TorchScript scalar-type index (a ``dtype=`` argument)."""
    from torch.onnx._internal.torchscript_exporter import _type_utils

    return int(_type_utils.JitScalarType(scalar_type).onnx_type())  # type: ignore[call-overload]
