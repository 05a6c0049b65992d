"""Pass ``fold_constants``: evaluate every node whose inputs are all known at export time.

Ops: any deterministic ONNX op over constants (onnxscript's ``FoldConstantsPass``, which runs
the ONNX reference evaluator), and shape chains on static shapes: ``Shape``/``Size`` of a
value whose dimensions are all known become constants, so ``Shape -> Gather -> Unsqueeze ->
Concat -> Reshape`` chains collapse into one constant shape.  ONNX shape inference runs first
so those static shapes are visible.  Limits: inputs over 8192 elements and outputs over
512*512 elements are not folded (onnxscript's defaults, so big weights are not duplicated);
random ops and control flow are never folded.
"""

from __future__ import annotations

import logging

import onnx_ir as ir
import onnx_ir.passes.common as common_passes
from onnxscript.optimizer import fold_constants as _fold

from rewrites.manager import register_pass

logger = logging.getLogger(__name__)


@register_pass(
    "fold_constants",
    "fold constant subgraphs and Shape->Gather->Unsqueeze->Concat chains on static shapes",
    user=False,
)
def fold_constants(model: ir.Model) -> bool:
    """f(c1, ..., cn) -> constant, for constants c and static Shape(x)."""
    common_passes.ShapeInferencePass(strict_mode=False)(model)
    result = _fold(model, onnx_shape_inference=True)
    changed = bool(result.modified)
    if changed:
        common_passes.RemoveUnusedNodesPass()(model)
    return changed
