"""Lowering an ONNX node to a Core ML custom layer (neural-network backend only).

Ops: any, chosen with ``custom_layers=["TopK", ...]`` (``--custom-layers TopK``) or
``custom_layers="all-unsupported"`` (every op without a handler or composite).

The node becomes one custom MIL op (see ``spec.py``); the driver records it with kind
``custom_layer`` and :func:`pipeline.lowering.custom_layers.swift.write_layers` writes its Swift
class and Metal kernel next to the saved model.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import onnx
from coremltools.converters.mil.mil.types.symbolic import is_symbolic
from onnx import helper

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.custom_layers.spec import (
    ABSENT,
    PARAM,
    TENSOR,
    LayerSpec,
    Slot,
    class_name_for,
    encode_types,
    layer_class,
    param_value,
)
from pipeline.lowering.dtypes import legalize_array
from pipeline.lowering.node import Node

log = logging.getLogger(__name__)

#: option value that turns every op without a lowering into a custom layer.
ALL_UNSUPPORTED = "all-unsupported"


def _formal_names(node: Node) -> list[str]:
    try:
        schema = onnx.defs.get_schema(node.op_type, node.opset, node.domain)
    except onnx.defs.SchemaError:
        return [f"input{i}" for i in range(len(node.inputs))]
    names = []
    for i in range(len(node.inputs)):
        formal = schema.inputs[min(i, len(schema.inputs) - 1)] if schema.inputs else None
        base = formal.name.lower() if formal is not None else f"input{i}"
        variadic = formal is not None and formal.option == onnx.defs.OpSchema.FormalParameterOption.Variadic
        names.append(f"{base}{i}" if variadic else base)
    return names


def _attr_kind(node: Node, name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, (str, bytes)):
        return "string"
    if isinstance(value, list) and all(isinstance(v, (int, float, str, bytes)) for v in value):
        return "json"
    raise UnsupportedOpError(
        f"lower: {node.describe()}: attribute '{name}' ({type(value).__name__}) cannot be a custom "
        "layer parameter (bool, int, float, string or lists of them only); register a composite "
        "for this op instead (see README, 'Adding an op')"
    )


def _onnx_type(ctx: LowerContext, node: Node, i: int, var: Any) -> int:
    known = ctx.onnx_type(node.input_names[i])
    if known:
        return known
    value = ctx.value_of(var)
    if value is not None:
        return helper.np_dtype_to_tensor_dtype(value.dtype)
    return helper.np_dtype_to_tensor_dtype(ctx.np_dtype(var))


def _output_types(ctx: LowerContext, node: Node, slots: list[Slot]) -> str:
    """ONNX shape inference of the node alone, from its inputs' MIL shapes and ONNX types."""
    graph_inputs, inits, names = [], [], []
    for i, (slot, var) in enumerate(zip(slots, node.inputs)):
        if slot.kind == ABSENT:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        value = ctx.value_of(var)
        if value is not None:
            np_type = helper.tensor_dtype_to_np_dtype(slot.onnx_type)
            inits.append(onnx.numpy_helper.from_array(np.asarray(value).astype(np_type), name))
            continue
        shape = [None if is_symbolic(d) else int(d) for d in var.shape]
        graph_inputs.append(helper.make_tensor_value_info(name, slot.onnx_type, shape))
    outs = [f"out{i}" for i in range(len(node.output_names))]
    proto = helper.make_node(node.op_type, names, outs, domain=node.domain, **{
        a.name: helper.get_attribute_value(a) for a in node.proto.attribute
    })
    opsets = [helper.make_opsetid(d, v) for d, v in ctx.opsets.items()]
    model = helper.make_model(
        helper.make_graph([proto], "layer", graph_inputs, [helper.make_empty_tensor_value_info(o) for o in outs], inits),
        opset_imports=opsets,
    )
    if node.domain:
        _attach_known_bodies(model)
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    described = []
    for out in inferred.graph.output:
        tensor = out.type.tensor_type
        if not tensor.elem_type or not tensor.HasField("shape"):
            return _output_types_by_running(node, model)
        np_type = helper.tensor_dtype_to_np_dtype(tensor.elem_type)
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        described.append((_legal_dtype(np_type, out.name), dims))
    return encode_types(described)


def _legal_dtype(np_type: Any, name: str) -> np.dtype:
    legal, _ = legalize_array(np.zeros((), np_type), name)
    return legal.dtype


def _output_types_by_running(node: Node, model: onnx.ModelProto) -> str:
    """Output types of an op shape inference cannot type (a custom-domain schema without an
    inference function): run it once on zeros of the (static) input shapes."""
    feeds: dict[str, np.ndarray] = {}
    for vi in model.graph.input:
        dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
        if any(d is None for d in dims):
            raise UnsupportedOpError(
                f"lower: {node.describe()}: ONNX shape inference cannot type its outputs and input "
                f"'{vi.name}' has symbolic dims, so a custom layer cannot be declared; fix the "
                "input shapes (--input-shape) or register a composite"
            )
        feeds[vi.name] = np.zeros([int(d) for d in dims if d is not None], helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type))
    from onnx.reference import ReferenceEvaluator

    results = [np.asarray(r) for r in ReferenceEvaluator(model).run(None, feeds)]
    return encode_types([(_legal_dtype(r.dtype, "output"), list(r.shape)) for r in results])


def _attach_known_bodies(model: onnx.ModelProto) -> None:
    """Shape inference of a custom-domain op goes through its body: attach the bodies we know."""
    import symbolics
    from pipeline.extensions import attach_bodies

    symbolics.attach_functions(model)
    attach_bodies(model)


def build_spec(ctx: LowerContext, node: Node) -> tuple[LayerSpec, dict[str, Any]]:
    """The layer spec of ``node`` and the MIL op's keyword inputs."""
    slots: list[Slot] = []
    kwargs: dict[str, Any] = {}
    params: list[tuple[str, str]] = []
    attr_names = {
        name for name, value in node.attrs.items() if value is not None
    }
    formal = _formal_names(node)
    n_tensor = 0
    for i, var in enumerate(node.inputs):
        if var is None:
            slots.append(Slot(ABSENT))
            continue
        onnx_type = _onnx_type(ctx, node, i, var)
        value = ctx.value_of(var)
        if value is not None and value.size == 1 and value.dtype.kind in "biuf":
            name = formal[i] if formal[i] not in attr_names else f"{formal[i]}_input"
            kind = {"b": "bool", "f": "float"}.get(value.dtype.kind, "int")
            slots.append(Slot(PARAM, name, onnx_type, tuple(value.shape)))
            params.append((name, kind))
            kwargs[name] = param_value(kind, value.reshape(()).item())
            continue
        name = f"x{n_tensor}"
        n_tensor += 1
        slots.append(Slot(TENSOR, name, onnx_type))
        kwargs[name] = var
    attributes = []
    for name in sorted(attr_names):
        value = node.attrs[name]
        kind = _attr_kind(node, name, value)
        params.append((name, kind))
        attributes.append(name)
        kwargs[name] = param_value(kind, value)
    if not n_tensor:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: has no tensor input, so it cannot be a custom layer "
            "(Core ML custom layers take at least one input); register a composite instead"
        )
    spec = LayerSpec(
        class_name=class_name_for(node.op_type, node.domain),
        op_type=node.op_type,
        domain=node.domain,
        opset=node.opset,
        slots=tuple(slots),
        params=tuple(params),
        attributes=tuple(attributes),
        n_outputs=len(node.output_names),
    )
    kwargs["out_types"] = _output_types(ctx, node, slots)
    return spec, kwargs


def lower_as_custom_layer(ctx: LowerContext, node: Node) -> Any:
    """y = the ONNX op, computed on device by a generated Swift class.

    MIL: one custom op (coremltools ``is_custom_op``) with bindings; neural-network backend only.
    Limits: attributes must be scalars, strings or lists of them; the op needs a tensor input
    and ONNX shape inference must type its outputs.
    """
    if ctx.options.get("backend", "mlprogram") != "neuralnetwork":
        raise UnsupportedOpError(
            f"lower: {node.describe()}: custom layers exist only in neural-network models (Core ML "
            "ML Programs have no custom layers); pass --backend neuralnetwork, or register a "
            "composite for the op instead (see README, 'Adding an op')"
        )
    spec, kwargs = build_spec(ctx, node)
    cls = layer_class(spec)
    result = getattr(ctx.mb, cls.__name__)(**kwargs)
    specs = ctx.options.setdefault("_custom_layer_specs", {}).setdefault(spec.class_name, [])
    if spec not in specs:
        specs.append(spec)
    return result
