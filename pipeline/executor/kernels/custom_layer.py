"""Kernels for Core ML custom layers: evaluate the ONNX node the layer stands for.

Ops: every ``custom_<Class>_<n>`` MIL op made by ``pipeline.lowering.custom_layers.spec``; they
are registered here one by one as the lowering creates them (:func:`register_layer_kernel`).

A custom layer has no MIL semantics of its own: on device, the generated Swift class computes
it.  On Linux we rebuild the original ONNX node from the op's ``layer_spec`` (op type, domain,
opset, which inputs are tensors or parameters) and its parameter values, and run it with onnx's
reference evaluator (an implementation independent of onnxruntime, which the parity check uses
as the expected side); ops the reference evaluator lacks fall back to onnxruntime.  Our own
domain's ops run through their standard-ONNX bodies (``symbolics.domain.BODIES``).

Parity for custom layers is therefore checked on the MIL program in process, before (and
independently of) the neural-network conversion: our executor reads ML Programs only, so a
saved ``.mlmodel`` with custom layers cannot be re-run here.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

import numpy as np
import onnx
from onnx import helper

from pipeline.executor.kernels.registry import KERNELS, mil_kernel

log = logging.getLogger(__name__)


def register_layer_kernel(op_type: str) -> None:
    """Register the custom-layer kernel for the MIL op type ``op_type`` (idempotent)."""
    if KERNELS.lookup(op_type) is None:
        mil_kernel(op_type, ctx=True)(custom_layer)


def _functions(domain: str) -> list[onnx.FunctionProto]:
    """Standard-ONNX bodies of our custom domain's ops, for evaluators that lack them."""
    if not domain:
        return []
    try:
        from symbolics.domain import BODIES
    except ImportError:
        return []
    return [fn.to_function_proto() for fn in BODIES.values()]


def _attribute(kind: str, value: Any) -> Any:
    value = value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value
    if kind == "json":
        return json.loads(str(value))
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "bool":
        return int(bool(value))
    return str(value)


@functools.lru_cache(maxsize=64)
def _session(model_bytes: bytes) -> Any:
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(onnx.load_from_string(model_bytes))


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    data = model.SerializeToString()
    try:
        return list(_session(data).run(None, feeds))
    except Exception as exc:  # noqa: BLE001  (the reference evaluator lacks some ops and dtypes)
        log.debug("reference evaluator failed (%s); using onnxruntime", exc)
        import onnxruntime as ort

        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        return list(session.run(None, feeds))


def custom_layer(ctx: Any, **inputs: Any) -> tuple[np.ndarray, ...]:
    """y = the ONNX node's outputs, evaluated with onnx's reference evaluator."""
    spec = type(ctx.op).layer_spec
    kinds = dict(spec.params)
    names, graph_inputs, inits, feeds = [], [], [], {}
    for i, slot in enumerate(spec.slots):
        if slot.kind == "absent":
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        arr = np.asarray(inputs[slot.name])
        if slot.onnx_type:
            arr = arr.astype(helper.tensor_dtype_to_np_dtype(slot.onnx_type))
        if slot.kind == "param":
            inits.append(onnx.numpy_helper.from_array(arr.reshape(slot.shape), name))
            continue
        feeds[name] = arr
        elem = helper.np_dtype_to_tensor_dtype(arr.dtype)
        graph_inputs.append(helper.make_tensor_value_info(name, elem, list(arr.shape)))
    attrs = {a: _attribute(kinds[a], inputs[a]) for a in spec.attributes}
    outs = [f"out{i}" for i in range(spec.n_outputs)]
    node = helper.make_node(spec.op_type, names, outs, domain=spec.domain, **attrs)
    opsets = [helper.make_opsetid("", spec.opset if not spec.domain else 18)]
    if spec.domain:
        opsets.append(helper.make_opsetid(spec.domain, spec.opset))
    graph = helper.make_graph(
        [node], "custom_layer", graph_inputs, [helper.make_empty_tensor_value_info(o) for o in outs], inits
    )
    model = helper.make_model(graph, opset_imports=opsets, functions=_functions(spec.domain))
    model.ir_version = min(model.ir_version, 10)
    return tuple(_run(model, feeds))
