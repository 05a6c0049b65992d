"""Kernels of MIL's state ops (coremltools defs: iOS18/states.py, coreml_dialect/ops.py).

Ops: read_state, write_state (as stored in a saved model), coreml_update_state (the coremltools
dialect op that pyMIL uses for ``write_state`` followed by ``read_state``).

A state input of the program is bound to a :class:`pipeline.executor.state.StateHandle`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.executor.kernels.registry import IOS18, mil_kernel
from pipeline.executor.state import StateHandle


@mil_kernel("read_state", since=IOS18)
def read_state(input: StateHandle) -> np.ndarray:
    """A copy of the state's current value."""
    return input.read()


@mil_kernel("write_state", since=IOS18)
def write_state(input: StateHandle, data: np.ndarray) -> tuple[Any, ...]:
    """state := data; no outputs."""
    input.write(data)
    return ()


@mil_kernel("coreml_update_state", since=IOS18)
def coreml_update_state(state: StateHandle, value: np.ndarray) -> np.ndarray:
    """state := value; returns ``value`` (what a following ``read_state`` would give)."""
    state.write(value)
    return np.asarray(value)
