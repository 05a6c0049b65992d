"""A view of one ONNX node as a lowering handler sees it."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from pipeline.exporting.source_info import location_of


@functools.lru_cache(maxsize=4096)
def _schema_defaults(op_type: str, domain: str, opset: int) -> dict[str, Any]:
    """Default attribute values of an op's schema at an opset ({} when unknown)."""
    try:
        schema = onnx.defs.get_schema(op_type, opset, domain)
    except onnx.defs.SchemaError:
        return {}
    defaults: dict[str, Any] = {}
    for name, attr in schema.attributes.items():
        if attr.default_value is not None and attr.default_value.type != 0:
            defaults[name] = _attr_value(attr.default_value)
    return defaults


def _attr_value(attr: onnx.AttributeProto) -> Any:
    value = helper.get_attribute_value(attr)
    if attr.type == onnx.AttributeProto.STRING:
        return value.decode("utf-8") if isinstance(value, bytes) else value
    if attr.type == onnx.AttributeProto.STRINGS:
        return [v.decode("utf-8") if isinstance(v, bytes) else v for v in value]
    if attr.type == onnx.AttributeProto.TENSOR:
        return numpy_helper.to_array(value)
    if attr.type == onnx.AttributeProto.INTS:
        return [int(v) for v in value]
    if attr.type == onnx.AttributeProto.FLOATS:
        return [float(v) for v in value]
    return value


@dataclasses.dataclass
class Node:
    """One ONNX node: its proto, its MIL inputs (None where omitted), and its attributes.

    Attributes absent from the node take the default of the op's schema at the model's opset,
    so handlers read ``node.attrs["alpha"]`` without repeating the spec's defaults.
    """

    proto: onnx.NodeProto
    inputs: list[Any]
    opset: int
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_proto(cls, proto: onnx.NodeProto, inputs: list[Any], opset: int) -> Node:
        attrs = dict(_schema_defaults(proto.op_type, proto.domain, opset))
        for attr in proto.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                attrs[attr.name] = attr.g
            elif attr.type == onnx.AttributeProto.GRAPHS:
                attrs[attr.name] = list(attr.graphs)
            else:
                attrs[attr.name] = _attr_value(attr)
        return cls(proto, inputs, opset, attrs)

    # -- identity -----------------------------------------------------------------------
    @property
    def op_type(self) -> str:
        return self.proto.op_type

    @property
    def domain(self) -> str:
        return self.proto.domain

    @property
    def name(self) -> str:
        return self.proto.name or f"{self.op_type}({', '.join(self.proto.output)})"

    @property
    def input_names(self) -> list[str]:
        return list(self.proto.input)

    @property
    def output_names(self) -> list[str]:
        return list(self.proto.output)

    def output_name(self, i: int = 0) -> str:
        return self.proto.output[i]

    @property
    def source(self) -> str | None:
        """The PyTorch source line (``file:line``) the node came from, when recorded."""
        return location_of(self.proto) or None

    def describe(self) -> str:
        """``node 'NAME' (domain::Op, opset N, file.py:12)`` for error messages."""
        where = f", {self.source}" if self.source else ""
        return f"node '{self.name}' ({self.domain or 'ai.onnx'}::{self.op_type}, opset {self.opset}{where})"

    # -- inputs and attributes ------------------------------------------------------------
    def input(self, i: int) -> Any:
        """MIL value of input ``i``, or None when omitted or past the end."""
        return self.inputs[i] if i < len(self.inputs) else None

    def has_input(self, i: int) -> bool:
        return self.input(i) is not None

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def has_attr(self, name: str) -> bool:
        return any(a.name == name for a in self.proto.attribute)

    def const_input(self, i: int) -> np.ndarray | None:
        """Input ``i``'s value when it is known at conversion time (a constant), else None."""
        var = self.input(i)
        if var is None:
            return None
        val = getattr(var, "val", None)
        return None if val is None else np.asarray(val)
