"""The lowering context: what a handler needs besides its node."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

from pipeline.lowering.dtypes import legalize_array, mil_dtype_string

log = logging.getLogger(__name__)


class TargetTooLow(Exception):
    """Raised by a handler that needs a newer deployment target than the one being built.

    The driver either restarts the lowering at ``needed`` (when raising the target is allowed)
    or turns this into an error that explains which option to use.
    """

    def __init__(self, needed: int, why: str) -> None:
        super().__init__(f"needs iOS{needed}+: {why}")
        self.needed = needed
        self.why = why


@dataclasses.dataclass
class NodeRecord:
    """How one ONNX node was lowered (for the report and Netron traceability)."""

    node: str
    op_type: str
    domain: str
    kind: str
    mil_ops: list[str]
    outputs: list[str]
    source: str | None = None


class Scope:
    """ONNX tensor name -> MIL value, with an outer scope for subgraphs (If/Loop/Scan bodies)."""

    def __init__(self, outer: Scope | None = None) -> None:
        self.outer = outer
        self._values: dict[str, Any] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._values or (self.outer is not None and name in self.outer)

    def __getitem__(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        if self.outer is not None:
            return self.outer[name]
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default  # noqa: SIM401 - this *is* get()

    def __setitem__(self, name: str, value: Any) -> None:
        self._values[name] = value

    def local_items(self) -> Mapping[str, Any]:
        return self._values


class LowerContext:
    """Shared state of one lowering: opsets, target, values, warnings, node records.

    Attributes:
        mb: coremltools' MIL builder (module-level; kept here so handlers read ``ctx.mb``).
        opsets: ONNX opset version per domain ("" is the default domain).
        target: the iOS opset number being built (15..18).
        values: the current scope of ONNX tensor name -> MIL value.
    """

    mb = mb

    def __init__(self, opsets: Mapping[str, int], target: int, *, options: Mapping[str, Any] | None = None) -> None:
        self.opsets = dict(opsets)
        self.target = target
        self.values = Scope()
        self.warnings: list[str] = []
        self.records: list[NodeRecord] = []
        self.options: dict[str, Any] = dict(options or {})
        self._counter = 0
        #: ONNX element type per tensor name (graph inputs, initializers, value_info), for
        #: handlers that need the type legalization erased (int8 vs uint8 zero points).
        self.onnx_types: dict[str, int] = {}

    # -- diagnostics ----------------------------------------------------------------------
    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            log.warning(message)

    def require_target(self, needed: int, why: str) -> None:
        """Raise :class:`TargetTooLow` unless the program is built for iOS``needed`` or newer."""
        if self.target < needed:
            raise TargetTooLow(needed, why)

    def unique(self, stem: str) -> str:
        self._counter += 1
        return f"{stem}__{self._counter}"

    # -- constants ------------------------------------------------------------------------
    def const(self, value: Any, name: str | None = None) -> Any:
        """A MIL constant of ``value``, legalized (int64 -> int32, float64 -> float32)."""
        arr, warning = legalize_array(np.asarray(value), name or "constant")
        if warning:
            self.warn(warning)
        kwargs: dict[str, Any] = {"val": arr}
        if name:
            kwargs["name"] = name
        return mb.const(**kwargs)

    @staticmethod
    def value_of(var: Any) -> np.ndarray | None:
        """The conversion-time value of ``var`` when it is a constant (or folds to one)."""
        if var is None:
            return None
        val = getattr(var, "val", None)
        return None if val is None else np.asarray(val)

    @staticmethod
    def np_dtype(var: Any) -> np.dtype:
        """The numpy dtype of a MIL tensor/scalar value."""
        dtype = var.dtype
        return np.dtype(types.nptype_from_builtin(dtype))

    def scalar_like(self, var: Any, value: float) -> np.generic:
        """``value`` as a numpy scalar of ``var``'s dtype (MIL wants matching dtypes)."""
        return self.np_dtype(var).type(value)

    def array_like(self, var: Any, value: Any) -> np.ndarray:
        return np.asarray(value, dtype=self.np_dtype(var))

    def cast(self, var: Any, np_dtype: Any, name: str | None = None) -> Any:
        """``var`` cast to ``np_dtype`` (a no-op when it already has it)."""
        if self.np_dtype(var) == np.dtype(np_dtype):
            return var
        kwargs = {"x": var, "dtype": mil_dtype_string(np.dtype(np_dtype))}
        if name:
            kwargs["name"] = name
        return mb.cast(**kwargs)

    def onnx_type(self, name: str) -> int | None:
        """The ONNX element type of tensor ``name`` when the model declares it, else None."""
        return self.onnx_types.get(name)

    def is_float(self, var: Any) -> bool:
        return self.np_dtype(var).kind == "f"

    # -- subgraphs ------------------------------------------------------------------------
    def lower_subgraph(self, graph: Any, bindings: Mapping[str, Any]) -> list[Any]:
        """Lower an ONNX subgraph in the current MIL block; ``bindings`` feed its inputs."""
        from pipeline.lowering.graph import lower_graph_body

        outer = self.values
        self.values = Scope(outer)
        try:
            for name, var in bindings.items():
                self.values[name] = var
            return lower_graph_body(self, graph)
        finally:
            self.values = outer
