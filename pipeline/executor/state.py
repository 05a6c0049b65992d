"""The explicit state of a stateful MIL program (``read_state`` / ``coreml_update_state``).

A :class:`State` holds one array per state input of a function.  Pass the same object to
successive :func:`pipeline.executor.execute` calls to carry the state across them, as Core ML's
``MLModel.make_state()`` does; without one, every call starts from zeros.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from pipeline.errors import ExecutorError

log = logging.getLogger(__name__)


def state_specs(func: Any) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``name -> (shape, dtype)`` of every state input of a MIL function."""
    from coremltools.converters.mil.mil import types

    from pipeline.executor.runner import mil_dtype_to_numpy

    specs: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    for name, var in func.inputs.items():
        if not types.is_state(var.sym_type):
            continue
        wrapped = var.sym_type.wrapped_type()
        dtype = mil_dtype_to_numpy(wrapped)
        shape = tuple(wrapped.get_shape())
        if dtype is None or not all(isinstance(d, (int, np.integer)) for d in shape):
            raise ExecutorError(
                f"execute: state input {name!r} has type {wrapped.__type_info__()}; only tensors "
                "of fixed shape are supported"
            )
        specs[name] = (tuple(int(d) for d in shape), dtype)
    return specs


class StateHandle:
    """What a state input of the program is bound to while it runs: one named slot."""

    __slots__ = ("name", "store")

    def __init__(self, store: State, name: str) -> None:
        self.store = store
        self.name = name

    def read(self) -> np.ndarray:
        """A copy of the current value (later writes must not change what was read)."""
        return self.store[self.name].copy()

    def write(self, value: np.ndarray) -> None:
        current = self.store[self.name]
        value = np.asarray(value)
        if value.shape != current.shape:
            raise ExecutorError(
                f"execute: writing shape {value.shape} into state {self.name!r} of shape "
                f"{current.shape}"
            )
        self.store[self.name] = value.astype(current.dtype, copy=True)


class State:
    """Named arrays of a stateful program, persisting across ``execute`` calls.

    Args:
        values: initial arrays by state name; states not given start at zero when bound.
    """

    def __init__(self, values: Mapping[str, np.ndarray] | None = None) -> None:
        self._values: dict[str, np.ndarray] = {
            name: np.array(arr, copy=True) for name, arr in (values or {}).items()
        }

    @classmethod
    def zeros(cls, func: Any) -> State:
        """A zero-initialised state for every state input of ``func`` (a MIL function)."""
        return cls({n: np.zeros(s, d) for n, (s, d) in state_specs(func).items()})

    def bind(self, func: Any) -> dict[str, StateHandle]:
        """Check this state against ``func``'s state inputs (zero-filling absent ones).

        Raises:
            ExecutorError: on a state name the function lacks, or a wrong shape.
        """
        specs = state_specs(func)
        unknown = sorted(set(self._values) - set(specs))
        if unknown:
            raise ExecutorError(
                f"execute: state {unknown} not in the program; its states are {sorted(specs)}"
            )
        for name, (shape, dtype) in specs.items():
            if name not in self._values:
                self._values[name] = np.zeros(shape, dtype)
                continue
            arr = self._values[name]
            if arr.shape != shape:
                raise ExecutorError(
                    f"execute: state {name!r} has shape {arr.shape}, the program declares {shape}"
                )
            if arr.dtype != dtype:
                self._values[name] = arr.astype(dtype)
        return {name: StateHandle(self, name) for name in specs}

    def __getitem__(self, name: str) -> np.ndarray:
        return self._values[name]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        self._values[name] = value

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def as_dict(self) -> dict[str, np.ndarray]:
        """Copies of the current arrays by name."""
        return {name: arr.copy() for name, arr in self._values.items()}

    @property
    def values(self) -> dict[str, np.ndarray]:
        """The live arrays (the executor's state store)."""
        return self._values

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}: {a.dtype}{list(a.shape)}" for n, a in self._values.items())
        return f"State({parts})"
