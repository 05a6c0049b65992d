"""PyTorch to Core ML through ONNX, with parity proven on Linux.

Public API (stable):

* :func:`export` - stage one, PyTorch to ONNX;
* :func:`lower` - stage two, ONNX to Core ML, verified by parity;
* :func:`convert` - both stages end to end, verified against PyTorch;
* :func:`execute` - run a Core ML MIL program with our reference executor.

The functions import their stage lazily so that ``import pipeline`` stays cheap.  The modules
``pipeline/export.py`` etc. are command-line shims only; nothing imports them (importing one
would rebind the name ``pipeline.export`` to the module).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pipeline.errors import (
    ExecutorError,
    ExportError,
    LoweringError,
    ModelLoadError,
    ParityError,
    PipelineError,
    UnsupportedOpError,
)

if TYPE_CHECKING:
    import numpy as np

    from pipeline.api import ConvertResult
    from pipeline.exporting.result import ExportResult
    from pipeline.lowering.stage import LowerResult

__version__ = "0.1.0"

__all__ = [
    "ExecutorError",
    "ExportError",
    "LoweringError",
    "ModelLoadError",
    "ParityError",
    "PipelineError",
    "UnsupportedOpError",
    "__version__",
    "convert",
    "execute",
    "export",
    "lower",
]


def export(model: Any, example_inputs: Any, out_path: Any = None, **options: Any) -> ExportResult:
    """Export a PyTorch model to ONNX (stage one); see :func:`pipeline.api.export`."""
    from pipeline.api import export as _export

    return _export(model, example_inputs, out_path, **options)


def lower(onnx_model_or_path: Any, out_path: Any = None, **options: Any) -> LowerResult:
    """Lower an ONNX model to Core ML (stage two); see :func:`pipeline.api.lower`."""
    from pipeline.api import lower as _lower

    return _lower(onnx_model_or_path, out_path, **options)


def convert(model: Any, example_inputs: Any, out_path: Any = None, **options: Any) -> ConvertResult:
    """PyTorch to Core ML end to end (both stages); see :func:`pipeline.api.convert`."""
    from pipeline.api import convert as _convert

    return _convert(model, example_inputs, out_path, **options)


def execute(
    model: Any,
    inputs: Mapping[str, np.ndarray],
    *,
    outputs: Iterable[str] | None = None,
    **options: Any,
) -> dict[str, np.ndarray]:
    """Run a MIL program / ML Program model / .mlpackage; see :func:`pipeline.executor.execute`.

    ``options``: ``state=`` (stateful programs) and ``function=`` (multi-function programs).
    """
    from pipeline.executor import execute as _execute

    return _execute(model, inputs, outputs=outputs, **options)
