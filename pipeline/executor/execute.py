"""``execute``: run a MIL program (or a saved ML Program) on named numpy inputs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from pipeline.errors import ExecutorError
from pipeline.executor import kernels  # noqa: F401  (registers every kernel family)
from pipeline.executor.runner import Executor, mil_dtype_to_numpy, opset_number


def execute(
    model: Any,
    inputs: Mapping[str, np.ndarray],
    *,
    outputs: Iterable[str] | None = None,
) -> dict[str, np.ndarray]:
    """Run ``model``'s main function on ``inputs`` and return its outputs by name.

    Args:
        model: a coremltools MIL ``Program``.
        inputs: one array per program input, keyed by input name.
        outputs: names of the outputs to return (default: all of them, in program order).

    Returns:
        A dict from output name to numpy array.

    Raises:
        ExecutorError: on unknown input names, missing inputs, or an op without a kernel.
    """
    func = model.functions["main"]
    opset = opset_number(func.opset_version)
    feeds: dict[str, Any] = {}
    for name, var in func.inputs.items():
        if name not in inputs:
            raise ExecutorError(f"execute: missing input {name!r}; the program takes {list(func.inputs)}")
        dtype = mil_dtype_to_numpy(var.sym_type)
        arr = np.asarray(inputs[name])
        feeds[name] = arr.astype(dtype) if dtype is not None and arr.dtype != dtype else arr
    unknown = set(inputs) - set(func.inputs)
    if unknown:
        raise ExecutorError(f"execute: unknown inputs {sorted(unknown)}; the program takes {list(func.inputs)}")
    results = Executor().run_block(func, {}, feeds, opset)
    named = {var.name: val for var, val in zip(func.outputs, results)}
    wanted = list(outputs) if outputs is not None else list(named)
    return {name: named[name] for name in wanted}
