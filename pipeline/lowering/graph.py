"""The lowering driver: walks an ONNX graph and builds a MIL program, one node at a time.

The driver alone binds values: it looks up each node's handler, hands it the MIL inputs, and
names every MIL value after the ONNX tensor it computes (helper values ``<tensor>__<step>``), so
that a Core ML model can be traced back to the .onnx file in Netron.
"""

from __future__ import annotations

import logging
from typing import Any

import onnx
from coremltools.converters.mil.mil import Function, Program
from coremltools.converters.mil.mil.block import curr_block
from onnx import numpy_helper

from pipeline.errors import LoweringError, PipelineError, UnsupportedOpError
from pipeline.lowering import model_interface
from pipeline.lowering.context import LowerContext, NodeRecord, TargetTooLow
from pipeline.lowering.empty_inputs import fold_empty_inputs
from pipeline.lowering.interface import IOAdapter
from pipeline.lowering.node import Node
from pipeline.lowering.registry import HANDLERS
from pipeline.registry import COMPOSITE, CUSTOM_LAYER, Entry

log = logging.getLogger(__name__)


def _ios_target(number: int) -> Any:
    import coremltools as ct

    return getattr(ct.target, f"iOS{number}")


def lower_graph_body(ctx: LowerContext, graph: onnx.GraphProto) -> list[Any]:
    """Lower ``graph``'s initializers and nodes into the current block; return its outputs."""
    for vi in (*graph.input, *graph.value_info, *graph.output):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            ctx.onnx_types[vi.name] = vi.type.tensor_type.elem_type
    for init in graph.initializer:
        ctx.onnx_types[init.name] = init.data_type
        ctx.values[init.name] = ctx.const(numpy_helper.to_array(init), name=init.name)
    for proto in graph.node:
        lower_node(ctx, proto)
    outputs = []
    for out in graph.output:
        if out.name not in ctx.values:
            raise LoweringError(f"lower: graph output '{out.name}' is computed by no node")
        outputs.append(ctx.values[out.name])
    return outputs


def _named(option: Any, proto: onnx.NodeProto) -> bool:
    """Whether a lowering option (a collection of op names) names this node's op."""
    if not option or isinstance(option, str):
        return False
    qualified = f"{proto.domain}::{proto.op_type}" if proto.domain else proto.op_type
    return proto.op_type in option or qualified in option


def _handler_for(ctx: LowerContext, proto: onnx.NodeProto) -> tuple[Any, int]:
    """The lowering of one node, in the order documented in ``pipeline.lowering.composites``."""
    from pipeline.lowering import composites
    from pipeline.lowering.custom_layers import ALL_UNSUPPORTED, lower_as_custom_layer
    from pipeline.lowering.unsupported import reason as unsupported_reason

    domain = "" if proto.domain == "ai.onnx" else proto.domain
    opset = ctx.opsets.get(domain, 1)
    custom_layers = ctx.options.get("custom_layers")
    custom_entry = Entry(domain, proto.op_type, 1, lower_as_custom_layer, CUSTOM_LAYER)
    if _named(custom_layers, proto):
        return custom_entry, opset
    user_composite = composites.lookup(proto.op_type, domain=domain, opset=opset, user=True)
    entry = HANDLERS.lookup(proto.op_type, domain=domain, version=opset)
    builtin = composites.lookup(proto.op_type, domain=domain, opset=opset, user=False)
    if user_composite is not None:
        return _composite_entry(user_composite), opset
    if builtin is not None and (entry is None or (not entry.user and _named(ctx.options.get("composites"), proto))):
        return _composite_entry(builtin), opset
    if entry is None and ALL_UNSUPPORTED in (custom_layers or ()):
        return custom_entry, opset
    if entry is None:
        node = Node(proto, [], opset)
        older = HANDLERS.versions(proto.op_type, domain=domain)
        why = unsupported_reason(proto.op_type, domain)
        hint = (
            f"handlers exist only from opset {older[0].since}"
            if older
            else f"not supported: {why}" if why else "no lowering is registered for this op"
        )
        raise UnsupportedOpError(
            f"lower: {node.describe()}: {hint}. Register a composite for it with "
            "@register_composite in a file passed with --extensions (see README, 'Adding an op'), "
            f"or make it a custom layer with --backend neuralnetwork --custom-layers {proto.op_type}"
        )
    return entry, opset


def _composite_entry(entry: Entry[Any]) -> Entry[Any]:
    from pipeline.lowering.composites import as_handler

    return Entry(entry.domain, entry.name, entry.since, as_handler(entry.value), COMPOSITE, entry.user)


def lower_node(ctx: LowerContext, proto: onnx.NodeProto) -> None:
    """Lower one node: look up its handler, run it, bind and name its outputs."""
    entry, opset = _handler_for(ctx, proto)
    inputs: list[Any] = []
    for name in proto.input:
        if not name:
            inputs.append(None)
        elif name in ctx.values:
            inputs.append(ctx.values[name])
        else:
            raise LoweringError(
                f"lower: {Node(proto, [], opset).describe()}: input '{name}' is not computed "
                "before this node (graph not topologically sorted?)"
            )
    node = Node.from_proto(proto, inputs, opset)
    block = curr_block()
    mark = _last_op(block)
    try:
        result = entry.value(ctx, node)
    except (TargetTooLow, UnsupportedOpError):
        raise
    except PipelineError as exc:
        if node.name in str(exc):
            raise
        raise type(exc)(f"lower: {node.describe()}: {exc}") from exc
    except Exception as exc:
        raise LoweringError(f"lower: {node.describe()}: {type(exc).__name__}: {exc}") from exc
    outputs = list(result) if isinstance(result, (list, tuple)) else [result]
    if len(outputs) > len(proto.output):
        raise LoweringError(
            f"lower: {node.describe()}: handler returned {len(outputs)} values for "
            f"{len(proto.output)} outputs"
        )
    new_ops = _ops_after(block, mark)
    _bind_outputs(ctx, node, outputs, new_ops)
    ctx.records.append(
        NodeRecord(
            node=node.name,
            op_type=node.op_type,
            domain=node.domain,
            kind=entry.kind,
            mil_ops=[op.op_type for op in new_ops if op.op_type != "const"],
            outputs=[n for n in proto.output if n],
            source=node.source,
        )
    )


def _last_op(block: Any) -> Any:
    ops = block.operations
    return ops[-1] if len(ops) else None


def _ops_after(block: Any, mark: Any) -> list[Any]:
    """The ops appended to ``block`` after ``mark`` (its operations are a linked list)."""
    ops = block.operations
    if not len(ops):
        return []
    cursor = ops.start if mark is None else ops._get_node_from_op(mark).next
    found = []
    while cursor is not None:
        found.append(cursor.op)
        cursor = cursor.next
    return found


def _bind_outputs(ctx: LowerContext, node: Node, outputs: list[Any], new_ops: list[Any]) -> None:
    new_op_ids = {id(op) for op in new_ops}
    named: set[int] = set()
    for onnx_name, var in zip(node.output_names, outputs):
        if not onnx_name or var is None:
            continue
        if id(var.op) in new_op_ids and id(var) not in named and var.op is not None:
            var.name = onnx_name
            named.add(id(var))
            if var.op.outputs[0] is var:
                var.op.name = node.proto.name or onnx_name
        ctx.values[onnx_name] = var
    missing = [n for i, n in enumerate(node.output_names) if n and (i >= len(outputs) or outputs[i] is None)]
    if missing:
        raise LoweringError(f"lower: {node.describe()}: handler produced no value for {missing}")
    # Helper values: <first output>__<step>, so every MIL value traces back to an ONNX tensor.
    stem = next((n for n in node.output_names if n), node.name)
    step = 0
    for op in new_ops:
        for out in op.outputs:
            if id(out) not in named:
                step += 1
                out.name = f"{stem}__{step}"
        if not any(id(o) in named for o in op.outputs) or op.name is None:
            op.name = f"{stem}__op{step}"


def build_program(model: onnx.ModelProto, target: int, *, options: dict[str, Any] | None = None) -> tuple[Program, LowerContext, IOAdapter]:
    """Lower a (checked, shape-inferred) ONNX model to a MIL program for iOS``target``.

    Raises:
        TargetTooLow: a handler needs a newer target (the caller decides whether to raise it).
        UnsupportedOpError, LoweringError: a node could not be lowered.
    """
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import}
    ctx = LowerContext(opsets, target, options=options)
    model = fold_empty_inputs(model, (options or {}).get("shapes"))
    graph = model.graph
    adapter = IOAdapter.from_graph(graph, options or {})
    prog = Program()
    with Function(adapter.placeholders(), opset_version=_ios_target(target)) as func:
        for name, var in adapter.bind_inputs(func.inputs).items():
            ctx.values[name] = var
        outputs = lower_graph_body(ctx, graph)
        func.set_outputs(adapter.bind_outputs(ctx, outputs))
    flexible_types = adapter.input_types()
    if flexible_types:
        func.set_input_types(flexible_types)
    image_outputs = model_interface.output_types(adapter.outputs)
    if image_outputs:
        func.set_output_types(image_outputs)
    prog.add_function("main", func)
    return prog, ctx, adapter


def initializer_names(graph: onnx.GraphProto) -> set[str]:
    return {i.name for i in graph.initializer}

