"""onnxsim simplification (constant folding, dead-node removal, shape-op fusion), keeping node
source locations that the simplifier's rebuilt nodes would lose."""

from __future__ import annotations

import logging

import onnx

from pipeline.errors import ExportError
from pipeline.exporting import source_info

log = logging.getLogger(__name__)


def simplify(model: onnx.ModelProto) -> onnx.ModelProto:
    """Run onnxsim once (its own check is skipped: our validation stage checks with ORT).

    Raises:
        ExportError: onnxsim failed; suggests ``--no-simplify``.
    """
    try:
        import onnxsim
    except ImportError as exc:
        raise ExportError("simplify: onnxsim is not installed; pass --no-simplify") from exc
    try:
        simplified, ok = onnxsim.simplify(model, check_n=0)
    except Exception as exc:  # onnxsim raises RuntimeError and C++ errors
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ExportError(f"simplify: onnxsim failed ({first}); rerun with --no-simplify") from exc
    if not ok:
        raise ExportError("simplify: onnxsim could not validate its result; rerun with --no-simplify")
    restored = source_info.carry_over(model, simplified)
    if restored:
        log.debug("restored source locations on %d simplified nodes", restored)
    source_info.ensure_node_names(simplified)
    return simplified
