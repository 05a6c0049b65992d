"""Pass ``remove_identity``: remove ``Identity`` and inference-mode ``Dropout``.

Ops: ``Identity`` (y = x) everywhere onnx_ir's ``IdentityEliminationPass`` allows (an Identity
joining a graph input straight to a graph output stays: the graph needs both names);
``Dropout`` (y = x when ``training_mode`` is absent or a constant false, any ratio, since
opset 12; the ``is_test``/``ratio`` attribute forms of opset < 12 are inference-only too) when
its ``mask`` output is unused.
"""

from __future__ import annotations

import logging

import onnx_ir as ir
import onnx_ir.passes.common as common_passes
from onnxscript.rewriter import pattern

from rewrites._util import apply_rules, const_array
from rewrites.manager import register_pass

logger = logging.getLogger(__name__)


def _dropout_target(op, x):  # type: ignore[no-untyped-def]
    return op.Dropout(x, _allow_other_inputs=True, _allow_other_attributes=True, _outputs=["y"])


def _dropout_is_inference(context, x: ir.Value, y: ir.Value, **_: object) -> bool:  # type: ignore[no-untyped-def]
    """Dropout is the identity unless training_mode (input 2) may be true or mask is used."""
    node = y.producer()
    if node is None:
        return False
    if len(node.outputs) > 1 and (node.outputs[1].uses() or node.outputs[1].is_graph_output()):
        return False
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        training = const_array(node.inputs[2])
        if training is None or bool(training.reshape(-1)[0]):
            return False
    return True


def _dropout_replacement(op, x, **_):  # type: ignore[no-untyped-def]
    return op.Identity(x)


_DROPOUT_RULE = pattern.RewriteRule(
    _dropout_target, _dropout_replacement, _dropout_is_inference, name="dropout_to_identity"
)


@register_pass(
    "remove_identity",
    "remove Identity nodes and Dropout in inference mode",
    user=False,
)
def remove_identity(model: ir.Model) -> bool:
    """Dropout(x) -> Identity(x) (inference), then Identity(x) -> x."""
    changed = apply_rules(model, [_DROPOUT_RULE]) > 0
    changed |= common_passes.IdentityEliminationPass()(model).modified
    if changed:
        common_passes.RemoveUnusedNodesPass()(model)
    return changed
