"""Runs the blocks of a MIL program op by op, dispatching each op to its registered kernel."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from pipeline.errors import ExecutorError, UnsupportedMILOpError
from pipeline.executor.kernels.registry import KERNELS

log = logging.getLogger(__name__)


def opset_number(opset_version: Any) -> int:
    """coremltools' ``AvailableTarget`` (or None) as our iOS opset number (13..18)."""
    if opset_version is None:
        return 13
    # AvailableTarget.iOS13 has value 4, ..., iOS18 value 9 (macOS targets alias them).
    return int(opset_version.value) + 9


def mil_dtype_to_numpy(mil_type: Any) -> np.dtype | None:
    """The numpy dtype of a MIL builtin type, or None for non-tensor types (lists, states)."""
    from coremltools.converters.mil.mil import types

    if mil_type is None:
        return None
    if types.is_tensor(mil_type):
        mil_type = mil_type.get_primitive()
    if types.is_state(mil_type) or types.is_list(mil_type):
        return None
    if mil_type is types.str:
        return None
    try:
        return np.dtype(types.nptype_from_builtin(mil_type))
    except (TypeError, KeyError):
        return None


@dataclasses.dataclass
class KernelContext:
    """What a ``ctx=True`` kernel can see beyond its inputs."""

    op: Any
    opset: int
    executor: Executor
    values: dict[str, Any]

    def run_block(self, block: Any, bindings: Mapping[str, Any]) -> list[Any]:
        """Run a nested block with its block inputs bound; returns its output values."""
        return self.executor.run_block(block, self.values, bindings, self.opset)

    @property
    def state(self) -> dict[str, Any]:
        return self.executor.state


class Executor:
    """Evaluates MIL blocks with the kernel registry.

    ``state`` maps the names of state inputs to their current arrays, for stateful programs.
    """

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self.state: dict[str, Any] = state if state is not None else {}

    # -- values -------------------------------------------------------------------------
    def _value_of(self, var: Any, values: Mapping[str, Any]) -> Any:
        if isinstance(var, (list, tuple)):
            return [self._value_of(v, values) for v in var]
        if var.name in values:
            return values[var.name]
        if var.val is not None:
            return _const_value(var)
        raise ExecutorError(f"value {var.name!r} is used before it is computed")

    def run_block(
        self,
        block: Any,
        outer: Mapping[str, Any],
        bindings: Mapping[str, Any],
        opset: int,
    ) -> list[Any]:
        values: dict[str, Any] = dict(outer)
        block_inputs = block.inputs.values() if isinstance(block.inputs, dict) else block.inputs
        for inp in block_inputs:
            if inp.name in bindings:
                values[inp.name] = bindings[inp.name]
        for op in block.operations:
            results = self.run_op(op, values, opset)
            for out_var, result in zip(op.outputs, results):
                values[out_var.name] = result
        return [self._value_of(v, values) for v in block.outputs]

    def run_op(self, op: Any, values: dict[str, Any], opset: int) -> list[Any]:
        if op.op_type == "const":
            return [_const_value(op.outputs[0])]
        entry = KERNELS.lookup(op.op_type, version=opset)
        if entry is None:
            known = KERNELS.versions(op.op_type)
            detail = f" (kernels exist from iOS{known[0].since})" if known else ""
            raise UnsupportedMILOpError(
                f"execute: op '{op.name}' of type '{op.op_type}' at opset iOS{opset} has no "
                f"kernel{detail}"
            )
        kwargs = {name: self._value_of(var, values) for name, var in op.inputs.items()}
        try:
            if entry.meta.get("ctx"):
                result = entry.value(KernelContext(op, opset, self, values), **kwargs)
            else:
                result = entry.value(**kwargs)
        except ExecutorError:
            raise
        except Exception as exc:
            raise ExecutorError(
                f"execute: op '{op.name}' ({op.op_type}, iOS{opset}) failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(result, (tuple, list)) or len(op.outputs) == 1 and _is_list_value(op):
            result = (result,)
        if len(result) != len(op.outputs):
            raise ExecutorError(
                f"execute: kernel for {op.op_type} returned {len(result)} values, "
                f"op '{op.name}' has {len(op.outputs)} outputs"
            )
        return [_coerce(r, v) for r, v in zip(result, op.outputs)]


def _is_list_value(op: Any) -> bool:
    from coremltools.converters.mil.mil import types

    return types.is_list(op.outputs[0].sym_type)


def _const_value(var: Any) -> Any:
    val = var.val
    if isinstance(val, (str, bool)) or val is None:
        return val
    dtype = mil_dtype_to_numpy(var.sym_type)
    arr = np.asarray(val)
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr


def _coerce(result: Any, var: Any) -> Any:
    """Cast a kernel result to the dtype the op declares for this output."""
    if result is None or isinstance(result, (str, list, dict)):
        return result
    dtype = mil_dtype_to_numpy(var.sym_type)
    arr = np.asarray(result)
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr
