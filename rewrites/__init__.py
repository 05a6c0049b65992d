"""Graph-surgery passes run on the exported ONNX model before simplification and lowering.

Each pass is a named, idempotent function ``(onnx_ir.Model) -> bool`` built on onnx_ir and
onnxscript's pattern rewriter.  :func:`run_passes` runs them in :data:`DEFAULT_ORDER`;
:func:`list_passes` describes them; :func:`register_pass` adds a user pass (see
the README, "Graph rewrites").
"""

from __future__ import annotations

# The built-in passes, imported by an explicit list (each registers itself on import).
from rewrites import (
    cleanup_casts,
    fold_constants,
    fuse_gelu,
    fuse_layer_norm,
    fuse_rms_norm,
    fuse_silu,
    fuse_softmax,
    manager,
    remove_dead_code,
    remove_identity,
)
from rewrites._util import apply_rules
from rewrites.manager import PASSES, PassRecord, list_passes, pass_order, register_pass, run_passes

#: Run order of the built-in passes; each line says why the pass sits where it does.
DEFAULT_ORDER: tuple[str, ...] = (
    # First: Identity and Dropout sit between the ops of a pattern and hide fusions.
    "remove_identity",
    # Before the fusions: they need literal epsilons/exponents and static shapes, and folding
    # collapses Shape->Gather->Concat chains; it also runs shape inference (types for casts).
    "fold_constants",
    # Needs the element types inferred above; drops the no-op .to(float32) casts that sit
    # inside hand-written fp32 RMSNorm/softmax code so the fusions below can match.
    "cleanup_casts",
    # Before fuse_rms_norm: the tail of a LayerNorm, (x-m)/sqrt(mean((x-m)^2)+eps), is itself
    # an RMSNorm of x-m, which would otherwise be fused first and hide the LayerNorm.
    "fuse_layer_norm",
    "fuse_rms_norm",
    # Independent of the norms and of each other: GELU uses Erf/Tanh, SiLU uses Sigmoid.
    "fuse_gelu",
    "fuse_silu",
    # After the norms: a softmax never overlaps them, but keeping fusions together keeps the
    # dead-code sweep below the only cleanup.
    "fuse_softmax",
    # Last: sweeps the nodes, initializers, functions and opset imports the passes orphaned.
    "remove_dead_code",
)
manager._builtin_order[:] = DEFAULT_ORDER

__all__ = [
    "DEFAULT_ORDER",
    "PASSES",
    "PassRecord",
    "apply_rules",
    "cleanup_casts",
    "fold_constants",
    "fuse_gelu",
    "fuse_layer_norm",
    "fuse_rms_norm",
    "fuse_silu",
    "fuse_softmax",
    "list_passes",
    "pass_order",
    "register_pass",
    "remove_dead_code",
    "remove_identity",
    "run_passes",
]
