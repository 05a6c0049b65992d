"""Custom layers as MIL ops: the layer spec of an ONNX node and the MIL op class made from it.

A Core ML custom layer (neural-network backend only) is a MIL op registered with
``register_op(is_custom_op=True)`` whose class carries coremltools' ``bindings``: ``class_name``
(the Swift/Objective-C class Core ML instantiates), ``input_order`` (the op inputs that become
layer inputs), ``parameters`` (const op inputs serialized into the layer's parameter dictionary:
bool, int, double or string) and ``description``.

How an ONNX node maps onto that:

* non-constant inputs, and constant inputs of more than one element, are layer inputs ``x0..xN``;
* constant inputs of one element (TopK's ``K``) and attributes are parameters, named after the
  schema's formal input (lower case) or the attribute; ints are int32, floats double, strings
  strings, and list attributes JSON strings (``"[1, 2]"``);
* one MIL op class per distinct *signature* (op, domain, opset, which slots are inputs or
  parameters, parameter kinds); its ``layer_spec`` lets the executor rebuild the ONNX node
  (``pipeline/executor/kernels/custom_layer.py``) and the Swift generator write the class.

Output types come from ONNX shape inference of the node and travel as the const string input
``out_types`` (not a parameter), so the op's type inference needs no side table.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from typing import Any

import numpy as np
from coremltools.converters.mil.mil import Operation, get_new_symbol, types
from coremltools.converters.mil.mil.input_type import InputSpec, TensorInputType
from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry

log = logging.getLogger(__name__)

TENSOR, PARAM, ABSENT = "tensor", "param", "absent"
#: parameter kinds -> MIL dtype of the const op input that carries them.
PARAM_TYPES = {"int": types.int32, "float": types.fp32, "string": types.str, "bool": types.bool}
#: element types a layer input may have after legalization (int64 -> int32, float64 -> fp32).
_TENSOR_DOMAIN = (types.fp16, types.fp32, types.int32, types.bool)


@dataclasses.dataclass(frozen=True)
class Slot:
    """One ONNX input position: a layer input, a parameter, or omitted.

    Attributes:
        kind: ``tensor``, ``param`` or ``absent``.
        name: the MIL input name (``x0``...) or the parameter name.
        onnx_type: the ONNX element type the node expects there (0 if unknown).
        shape: for a parameter, the shape of the original constant (``()`` or ``(1,)``).
    """

    kind: str
    name: str = ""
    onnx_type: int = 0
    shape: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """What one custom layer class is: the ONNX op it stands for and its interface."""

    class_name: str
    op_type: str
    domain: str
    opset: int
    slots: tuple[Slot, ...]
    params: tuple[tuple[str, str], ...]  # (name, kind): int, float, string, bool, json
    attributes: tuple[str, ...]  # the parameters that are ONNX attributes (the rest are inputs)
    n_outputs: int

    @property
    def tensor_inputs(self) -> list[str]:
        return [s.name for s in self.slots if s.kind == TENSOR]

    @property
    def description(self) -> str:
        return f"ONNX {self.domain or 'ai.onnx'}::{self.op_type} (opset {self.opset}) as a custom layer"

    def bindings(self) -> dict[str, Any]:
        """coremltools' custom-op bindings for this class."""
        return {
            "class_name": self.class_name,
            "input_order": self.tensor_inputs,
            "parameters": [name for name, _ in self.params],
            "description": self.description,
        }


def class_name_for(op_type: str, domain: str) -> str:
    """The Swift class name of a custom layer: ``TopKLayer``, ``PipelineCustomHardTanhLayer``."""
    prefix = "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", domain) if p)
    return f"{prefix}{op_type}Layer"


# -- output types as a string: "fp32[2,5];int32[2,?]" ---------------------------------------------
def encode_types(outputs: list[tuple[np.dtype, list[int | None]]]) -> str:
    """``[(dtype, shape with None for unknown dims)]`` -> the ``out_types`` string."""
    parts = []
    for dtype, shape in outputs:
        name = types.builtin_to_string(types.numpy_type_to_builtin_type(np.dtype(dtype)))
        dims = ",".join("?" if d is None else str(int(d)) for d in shape)
        parts.append(f"{name}[{dims}]")
    return ";".join(parts)


def decode_types(text: str) -> list[Any]:
    """The ``out_types`` string -> MIL tensor types (``?`` becomes a fresh symbol)."""
    result = []
    for part in text.split(";"):
        name, _, dims = part.partition("[")
        shape = [get_new_symbol() if d == "?" else int(d) for d in dims.rstrip("]").split(",") if d]
        dtype = types.string_to_builtin(name)
        result.append(types.tensor(dtype, shape) if shape else dtype)
    return result


_CLASSES: dict[tuple[Any, ...], type] = {}


def _signature(spec: LayerSpec) -> tuple[Any, ...]:
    return (spec.class_name, spec.op_type, spec.domain, spec.opset, spec.slots, spec.params,
            spec.attributes, spec.n_outputs)


def layer_class(spec: LayerSpec) -> type:
    """The MIL op class (registered as a coremltools custom op) for ``spec``; made once."""
    key = _signature(spec)
    if key in _CLASSES:
        return _CLASSES[key]
    op_name = f"custom_{spec.class_name}_{len(_CLASSES)}"
    fields: dict[str, Any] = {
        name: TensorInputType(type_domain=_TENSOR_DOMAIN) for name in spec.tensor_inputs
    }
    for name, kind in spec.params:
        fields[name] = TensorInputType(const=True, type_domain=PARAM_TYPES["string" if kind == "json" else kind])
    fields["out_types"] = TensorInputType(const=True, type_domain=types.str)

    def type_inference(self: Any) -> Any:
        out = decode_types(self.out_types.val)
        return out[0] if len(out) == 1 else tuple(out)

    cls = type(op_name, (Operation,), {
        "__doc__": spec.description,
        "input_spec": InputSpec(**fields),
        "bindings": spec.bindings(),
        "layer_spec": spec,
        "type_inference": type_inference,
    })
    registered = SSAOpRegistry.register_op(cls, is_custom_op=True, allow_override=True)
    _CLASSES[key] = registered
    from pipeline.executor.kernels.custom_layer import register_layer_kernel

    register_layer_kernel(op_name)
    log.debug("registered custom layer op %s for %s", op_name, spec.description)
    return registered


def param_value(kind: str, value: Any) -> Any:
    """A Python attribute / constant value as the const a parameter of ``kind`` holds."""
    if kind == "json":
        return json.dumps([v.decode() if isinstance(v, bytes) else v for v in value])
    if kind == "int":
        return np.int32(np.clip(int(value), np.iinfo(np.int32).min, np.iinfo(np.int32).max))
    if kind == "float":
        return np.float32(value)
    if kind == "bool":
        return bool(value)
    return value.decode() if isinstance(value, bytes) else str(value)


def is_custom_layer_op(op: Any) -> bool:
    """Whether a MIL operation is one of our custom layers."""
    return isinstance(getattr(type(op), "layer_spec", None), LayerSpec)
