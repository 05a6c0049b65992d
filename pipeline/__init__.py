"""PyTorch to Core ML through ONNX, with parity proven on Linux.

Public API (stable):

* :func:`export` - stage one, PyTorch to ONNX;
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

    from pipeline.exporting.result import ExportResult

__version__ = "0.1.0"

__all__ = [
    "export",
    "execute",
    "PipelineError",
    "ExportError",
    "ExecutorError",
    "LoweringError",
    "ModelLoadError",
    "ParityError",
    "UnsupportedOpError",
    "__version__",
]


def export(model: Any, example_inputs: Any, out_path: Any = None, **options: Any) -> ExportResult:
    """Export a PyTorch model to ONNX (stage one); see :func:`pipeline.api.export`."""
    from pipeline.api import export as _export

    return _export(model, example_inputs, out_path, **options)


def execute(
    model: Any,
    inputs: Mapping[str, np.ndarray],
    *,
    outputs: Iterable[str] | None = None,
) -> dict[str, np.ndarray]:
    """Run a MIL program / ML Program model / .mlpackage; see :func:`pipeline.executor.execute`."""
    from pipeline.executor import execute as _execute

    return _execute(model, inputs, outputs=outputs)
