"""Example extension: ``sigmoid(x) * tanh(x)`` as one ONNX node, from PyTorch to Core ML.

Passed with ``--extensions models/extensions/sigmoid_tanh.py`` (or ``extensions=[...]``), it
registers, for the torch custom op ``examples::sigmoid_tanh`` (defined in
``models/custom_activation.py``):

1. the ONNX op ``example.activations::SigmoidTanh`` (schema, so ``onnx.checker`` accepts it, and a
   standard-op body, so onnxruntime runs it);
2. a user symbolic translating the torch op into that one node;
3. a user composite lowering the node to MIL: ``mul(sigmoid(x), tanh(x))``.
"""

from __future__ import annotations

from typing import Any

import onnxscript
from onnx import defs
from onnxscript import opset18 as op

import symbolics
from pipeline.extensions import register_body
from pipeline.lowering.composites import register_composite

DOMAIN = "example.activations"

try:
    defs.get_schema("SigmoidTanh", 1, DOMAIN)
except defs.SchemaError:
    defs.register_schema(defs.OpSchema(
        "SigmoidTanh", DOMAIN, 1,
        doc="Y = sigmoid(X) * tanh(X), elementwise.",
        inputs=[defs.OpSchema.FormalParameter("X", "T")],
        outputs=[defs.OpSchema.FormalParameter("Y", "T")],
        type_constraints=[("T", ["tensor(float16)", "tensor(float)"], "float tensors")],
    ))

activations = onnxscript.values.Opset(DOMAIN, 1)


@onnxscript.script(opset=activations, default_opset=op)
def SigmoidTanh(X: onnxscript.FLOAT) -> onnxscript.FLOAT:
    """Standard-op body of example.activations::SigmoidTanh."""
    return op.Mul(op.Sigmoid(X), op.Tanh(X))


register_body(DOMAIN, "SigmoidTanh", SigmoidTanh)


@symbolics.symbolic("examples::sigmoid_tanh", opset=18, emits=(f"{DOMAIN}::SigmoidTanh",))
def sigmoid_tanh_onnx(x: Any) -> Any:
    """examples::sigmoid_tanh -> one example.activations::SigmoidTanh node."""
    return activations.SigmoidTanh(x)


@register_composite("SigmoidTanh", domain=DOMAIN)
def sigmoid_tanh_mil(ctx: Any, node: Any, attrs: dict[str, Any], inputs: list[Any]) -> Any:
    """y = sigmoid(x) * tanh(x).  MIL: sigmoid, tanh, mul (all three run on the Neural Engine)."""
    (x,) = inputs
    return ctx.mb.mul(x=ctx.mb.sigmoid(x=x), y=ctx.mb.tanh(x=x))
