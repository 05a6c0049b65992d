"""Stage two: ONNX to Core ML MIL."""

from pipeline.lowering import ops  # noqa: F401  (registers every handler family)
from pipeline.lowering.stage import LowerResult, lower

__all__ = ["LowerResult", "lower"]
