"""Our custom ONNX domain: op schemas, reference bodies, and attaching them to a model.

Ops (domain ``pipeline.custom``, version 1; full semantics in ``DOMAIN.md``):

* ``HardTanh(X; min_val: float, max_val: float) -> Y``: ``Y = min(max(X, min_val), max_val)``.

Each op's schema is registered with ``onnx.defs`` at import, so onnxscript (and through it the
dynamo exporter) can emit the node and ``onnx.checker`` validates it.  Each op also has a body in
standard ops (an onnxscript function); :func:`attach_functions` adds those bodies to a model as
model-local functions so onnxruntime can run it, while stage two still sees one node to lower.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import onnx
import onnxscript
from onnx import defs
from onnxscript import opset18 as op
from onnxscript.onnx_types import BFLOAT16, DOUBLE, FLOAT, FLOAT16

from symbolics import CUSTOM_DOMAIN, CUSTOM_DOMAIN_VERSION

logger = logging.getLogger(__name__)

_FLOATS = ["tensor(float16)", "tensor(float)", "tensor(double)", "tensor(bfloat16)"]
TFloat = TypeVar("TFloat", bound=FLOAT16 | FLOAT | DOUBLE | BFLOAT16)


def _register_schema(schema: defs.OpSchema) -> None:
    """Register ``schema`` with onnx.defs unless an identical one is already there."""
    try:
        defs.get_schema(schema.name, schema.since_version, schema.domain)
    except defs.SchemaError:
        defs.register_schema(schema)


_register_schema(defs.OpSchema(
    "HardTanh", CUSTOM_DOMAIN, CUSTOM_DOMAIN_VERSION,
    doc="Y = min(max(X, min_val), max_val), elementwise.",
    inputs=[defs.OpSchema.FormalParameter("X", "T")],
    outputs=[defs.OpSchema.FormalParameter("Y", "T")],
    type_constraints=[("T", _FLOATS, "float tensors")],
    attributes=[
        defs.OpSchema.Attribute("min_val", defs.OpSchema.AttrType.FLOAT, "lower bound"),
        defs.OpSchema.Attribute("max_val", defs.OpSchema.AttrType.FLOAT, "upper bound"),
    ],
))

#: our domain as an onnxscript opset: ``custom.HardTanh(x, min_val=0.0, max_val=6.0)``.
custom = onnxscript.values.Opset(CUSTOM_DOMAIN, CUSTOM_DOMAIN_VERSION)


@onnxscript.script(opset=custom, default_opset=op)
def HardTanh(X: TFloat, min_val: float, max_val: float) -> TFloat:
    """Body of pipeline.custom::HardTanh: Clip(X, min_val, max_val)."""
    return op.Clip(X, op.CastLike(min_val, X), op.CastLike(max_val, X))  # type: ignore[type-var]


#: op type -> onnxscript function whose body defines it in standard ops.
BODIES: dict[str, Any] = {"HardTanh": HardTanh}


def attach_functions(model: onnx.ModelProto) -> onnx.ModelProto:
    """Add a model-local function for every custom-domain op the model uses but lacks.

    Args:
        model: an exported model (modified in place and returned).

    Returns:
        ``model``, now runnable by onnxruntime (and still one node per custom op).
    """
    have = {(f.domain, f.name) for f in model.functions}
    used = {n.op_type for n in model.graph.node if n.domain == CUSTOM_DOMAIN}
    used |= {n.op_type for f in model.functions for n in f.node if n.domain == CUSTOM_DOMAIN}
    added = False
    for name in sorted(used):
        if (CUSTOM_DOMAIN, name) in have or name not in BODIES:
            continue
        proto = BODIES[name].to_function_proto()
        model.functions.append(proto)
        for imp in proto.opset_import:
            if imp.domain not in {i.domain for i in model.opset_import}:
                model.opset_import.append(imp)
        added = True
    if used and CUSTOM_DOMAIN not in {i.domain for i in model.opset_import}:
        model.opset_import.append(onnx.helper.make_opsetid(CUSTOM_DOMAIN, CUSTOM_DOMAIN_VERSION))
    if added:
        logger.debug("attached bodies of %s", sorted(used))
    return model
