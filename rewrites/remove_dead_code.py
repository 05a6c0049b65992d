"""Pass ``remove_dead_code``: drop nodes, initializers, functions and opset imports nothing uses.

Ops: any node whose outputs reach no graph output (side-effect free by ONNX semantics), plus
unused initializers, model-local functions and opset imports.  Built on onnx_ir's
``RemoveUnusedNodesPass`` / ``RemoveUnusedFunctionsPass`` / ``RemoveUnusedOpsetsPass``.
"""

from __future__ import annotations

import logging

import onnx_ir as ir
import onnx_ir.passes.common as common_passes

from rewrites.manager import register_pass

logger = logging.getLogger(__name__)


@register_pass(
    "remove_dead_code",
    "drop nodes, initializers, functions and opset imports that reach no output",
    user=False,
)
def remove_dead_code(model: ir.Model) -> bool:
    """y = f(x) is removed when y reaches no graph output."""
    changed = False
    for step in (
        common_passes.RemoveUnusedNodesPass(),
        common_passes.RemoveUnusedFunctionsPass(),
        common_passes.RemoveUnusedOpsetsPass(),
    ):
        changed |= step(model).modified
    return changed
