"""Errors raised by the pipeline.  Every error a user can cause is a :class:`PipelineError`;
the command-line tools print its message on one line and exit non-zero."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of every error this project raises on purpose."""

    exit_code = 2


class ModelLoadError(PipelineError):
    """A model source (spec, file, checkpoint, factory) could not be loaded."""


class InputSpecError(PipelineError):
    """An ``--input``/``--dynamic``/``--inputs-npz`` value is malformed or inconsistent."""


class ExportError(PipelineError):
    """Stage one (PyTorch to ONNX) failed."""


class ValidationError(PipelineError):
    """The ONNX checker or shape inference rejected a model."""


class RewriteError(PipelineError):
    """A graph rewrite pass failed or broke the model."""


class ParityError(PipelineError):
    """Two implementations disagree beyond tolerance."""

    exit_code = 1

    def __init__(self, message: str, parity: object | None = None) -> None:
        super().__init__(message)
        self.parity = parity


class LoweringError(PipelineError):
    """Stage two (ONNX to MIL) failed on a node."""


class UnsupportedOpError(LoweringError):
    """An ONNX op has no lowering (no handler, composite or custom layer)."""


class UnsupportedTypeError(LoweringError):
    """A tensor has an ONNX element type Core ML cannot hold (strings, float8, int4, ...)."""


class ExecutorError(PipelineError):
    """The reference MIL executor cannot run a program or an op."""


class UnsupportedMILOpError(ExecutorError):
    """The executor has no kernel for a MIL op at the program's opset."""


class ExtensionError(PipelineError):
    """A user extension file (``--extensions FILE``) could not be imported."""
