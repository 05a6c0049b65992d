"""Reference executor for Core ML MIL programs on Linux."""

from __future__ import annotations

from pipeline.executor.execute import execute

__all__ = ["execute"]
