"""Reference executor for Core ML MIL programs on Linux."""

from __future__ import annotations

from pipeline.executor.execute import execute, make_state
from pipeline.executor.loader import load
from pipeline.executor.state import State

__all__ = ["State", "execute", "load", "make_state"]
