"""Empty model inputs: Core ML has no empty tensors, but an empty input has one possible value.

An input whose static shape has a zero dimension (say [2, 0, 4]) can only ever be fed the
empty array of that shape, so it is a constant.  :func:`fold_empty_inputs` turns such inputs
into initializers and evaluates, with onnx's reference implementation, every node that
(transitively) consumes them once all its inputs are known constants: a ReduceSum over an empty
axis gives its identity (zeros), a non-empty tensor that lowers as an ordinary constant.

What still cannot be lowered is reported with one clear error: an empty tensor that reaches a
graph output (Core ML outputs are tensors of size >= 1), or a node mixing an empty value with
values only known at run time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from pipeline.errors import UnsupportedTypeError

log = logging.getLogger(__name__)


def _static_shape(vi: onnx.ValueInfoProto) -> list[int] | None:
    if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
        return None
    dims = vi.type.tensor_type.shape.dim
    if not all(d.HasField("dim_value") for d in dims):
        return None
    return [int(d.dim_value) for d in dims]


def empty_feeds(graph: onnx.GraphProto, shapes: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    """The one possible value of each graph input (not initializer) whose shape has a zero dimension.

    ``shapes`` overrides declared shapes (the lowering's ``shapes`` option); the same values feed
    onnxruntime (where the ONNX model still declares the input) and the folding below.
    """
    init = {i.name for i in graph.initializer}
    shapes = shapes or {}
    feeds = {}
    for vi in graph.input:
        if vi.name in init:
            continue
        shape = list(shapes[vi.name]) if vi.name in shapes else _static_shape(vi)
        if shape is not None and 0 in shape:
            dtype = helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
            feeds[vi.name] = np.zeros([int(d) for d in shape], dtype)
    return feeds


def _evaluate(node: onnx.NodeProto, values: Mapping[str, np.ndarray], opsets: list[Any], ir_version: int) -> list[np.ndarray]:
    """Run one node on constant inputs with onnx.reference."""
    from onnx.reference import ReferenceEvaluator

    names = [n for n in node.input if n]
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(values[n].dtype), values[n].shape) for n in names]
    outputs = [helper.make_empty_tensor_value_info(n) for n in node.output if n]
    model = helper.make_model(helper.make_graph([node], "fold", inputs, outputs), opset_imports=opsets)
    model.ir_version = ir_version
    results = ReferenceEvaluator(model).run(None, {n: values[n] for n in names})
    return [np.asarray(r) for r in results]


def fold_empty_inputs(model: onnx.ModelProto, shapes: Mapping[str, Any] | None = None) -> onnx.ModelProto:
    """``model`` with its empty inputs made constants and the nodes they feed folded (see module).

    Returns ``model`` itself when it has no empty input.

    Raises:
        UnsupportedTypeError: an empty value reaches a graph output or a node with run-time inputs.
    """
    graph = model.graph
    empty_values = empty_feeds(graph, shapes)
    if not empty_values:
        return model
    empty = list(empty_values)
    values: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    values.update(empty_values)
    derived = set(empty)  # values computed from an empty input: folded, or else an error
    folded: list[onnx.NodeProto] = []
    kept: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type == "Constant" and not node.domain:
            values[node.output[0]] = _evaluate(node, values, list(model.opset_import), model.ir_version)[0]
            kept.append(node)
            continue
        if not any(n in derived for n in node.input if n):
            kept.append(node)
            continue
        unknown = [n for n in node.input if n and n not in values]
        if unknown:
            # CastLike reads only the element type of its target_type (input 1): an empty
            # target_type stays as an empty initializer, which the lowering never materializes.
            typed = [n for i, n in enumerate(node.input) if not (node.op_type == "CastLike" and i == 1)]
            empties = sorted(n for n in typed if n in derived and values[n].size == 0)
            if empties:
                raise UnsupportedTypeError(
                    f"lower: node '{node.name or node.op_type}' ({node.op_type}) takes the empty value(s) "
                    f"{empties} and run-time value(s) {unknown}: Core ML has no empty tensors; make those "
                    "values constants or drop the empty input"
                )
            kept.append(node)  # its folded, non-empty inputs become initializers
            continue
        results = _evaluate(node, values, list(model.opset_import), model.ir_version)
        for out, arr in zip([o for o in node.output if o], results):
            values[out] = arr
            derived.add(out)
        folded.append(node)
    for out in graph.output:
        if out.name in derived and values[out.name].size == 0:
            raise UnsupportedTypeError(
                f"lower: output '{out.name}' is empty (shape {list(values[out.name].shape)}), computed from "
                f"empty input(s) {empty}: Core ML has no empty tensors; remove that output"
            )
    new = onnx.ModelProto()
    new.CopyFrom(model)
    g = new.graph
    keep_inputs = [vi for vi in g.input if vi.name not in empty]
    del g.input[:]
    g.input.extend(keep_inputs)
    del g.node[:]
    g.node.extend(kept)
    used = {n for node in kept for n in node.input} | {o.name for o in g.output}
    for name in sorted(derived):
        if name in used:
            g.initializer.append(numpy_helper.from_array(values[name], name))
    log.info("folded empty input(s) %s and %d node(s) into constants", empty, len(folded))
    return new
