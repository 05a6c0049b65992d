"""What :func:`pipeline.export` returns."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import onnx

from pipeline.parity import ParityReport


@dataclasses.dataclass
class ExportResult:
    """The final ONNX model and how it was obtained.

    Attributes:
        onnx_model: the validated model (exported, rewritten, simplified).
        path: where it was written, or None when no ``out_path`` was given.
        parity: onnxruntime vs PyTorch on the example (or npz) inputs, per output.
        report: the JSON-able report (stages, node counts, op histograms, parity).
        exporter_used: ``"dynamo"`` or ``"torchscript"`` (after any fallback).
        opset: the default-domain opset of the model.
        fallback_reason: why the requested exporter was abandoned ('' when it was not).
        input_names / output_names: the graph's input and output names.
        intermediates: the intermediate .onnx files written, in order.
        sha256: hex sha256 of the file written at ``path`` (None when nothing was written).
    """

    onnx_model: onnx.ModelProto
    path: Path | None
    parity: ParityReport | None
    report: dict[str, Any]
    exporter_used: str
    opset: int
    fallback_reason: str = ""
    input_names: list[str] = dataclasses.field(default_factory=list)
    output_names: list[str] = dataclasses.field(default_factory=list)
    intermediates: list[Path] = dataclasses.field(default_factory=list)
    sha256: str | None = None

    @property
    def ok(self) -> bool:
        """Whether parity held (True when parity was not measured)."""
        return self.parity is None or self.parity.ok
