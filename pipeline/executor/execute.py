"""``execute``: run a MIL program (or a saved ML Program) on named numpy inputs.

Inputs are checked against the function's declared inputs before anything runs: every input
present and no unknown name; ranks and fixed dims as declared, symbolic dims consistent across
inputs and within the spec's ``RangeDim`` / ``EnumeratedShapes``; values cast to the declared
dtype (float64 to fp32, int64 to int32 with an overflow check; float for an integer input is
refused).

Set ``PIPELINE_EXECUTOR_PROFILE=1`` to log (INFO) the time spent per op type after each call, or
pass ``profile=OpTimes()`` to collect it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from pipeline.errors import ExecutorError
from pipeline.executor import kernels  # noqa: F401  (registers every kernel family)
from pipeline.executor.loader import InputConstraint, LoadedModel, load
from pipeline.executor.runner import Executor, OpTimes, mil_dtype_to_numpy, opset_number
from pipeline.executor.state import State

log = logging.getLogger(__name__)

#: Environment variable that turns on per-op-type timing, logged at INFO after each call.
PROFILE_ENV = "PIPELINE_EXECUTOR_PROFILE"


def execute(
    model: Any,
    inputs: Mapping[str, np.ndarray],
    *,
    outputs: Iterable[str] | None = None,
    state: State | Mapping[str, np.ndarray] | None = None,
    function: str = "main",
    profile: OpTimes | None = None,
    observe: Callable[[str, Any], None] | None = None,
) -> dict[str, np.ndarray]:
    """Run ``model``'s function ``function`` on ``inputs`` and return its outputs by name.

    Args:
        model: a coremltools MIL ``Program``, an ``MLModel`` of type ML Program, or the path of
            a saved ``.mlpackage``.
        inputs: one array per program input, keyed by input name.
        outputs: names of the outputs to return (default: all of them, in program order).
        state: for stateful programs, a :class:`State` updated in place (pass the same object
            to the next call to carry the state on), or initial arrays by state name; default:
            zeros, discarded after the call.
        function: which function of a multi-function program to run.
        profile: an :class:`OpTimes` to add this call's time per op type to (opt-in; the
            environment variable ``PIPELINE_EXECUTOR_PROFILE=1`` logs a table instead).
        observe: called with (value name, array) for every value computed, intermediate ones
            included (used to localize the first diverging node).

    Returns:
        A dict from output name to numpy array.

    Raises:
        ExecutorError: on unreadable models, bad input names, shapes or dtypes, or an op
            without a kernel (:class:`pipeline.errors.UnsupportedMILOpError`).
    """
    loaded = load(model)
    func = _function(loaded, function)
    opset = opset_number(func.opset_version)
    feeds: dict[str, Any] = dict(prepare_inputs(func, inputs, loaded.constraints))
    store = state if isinstance(state, State) else State(state)
    feeds.update(store.bind(func))
    log_profile = profile is None and os.environ.get(PROFILE_ENV, "") not in ("", "0")
    if log_profile:
        profile = OpTimes()
    results = Executor(store.values, profile, observe).run_block(func, {}, feeds, opset)
    if log_profile and profile is not None:
        log.info("execute: time per op type (%s)\n%s", loaded.source, profile.table())
    named = {var.name: val for var, val in zip(func.outputs, results)}
    if outputs is None:
        return named
    wanted = list(outputs)
    unknown = [n for n in wanted if n not in named]
    if unknown:
        raise ExecutorError(
            f"execute: unknown outputs {unknown}; the program returns {list(named)}"
        )
    return {name: named[name] for name in wanted}


def make_state(model: Any, function: str = "main") -> State:
    """A zero-initialised :class:`State` for a stateful program (like ``MLModel.make_state``)."""
    loaded = load(model)
    return State.zeros(_function(loaded, function))


def _function(loaded: LoadedModel, name: str) -> Any:
    functions = loaded.program.functions
    if name not in functions:
        raise ExecutorError(
            f"execute: {loaded.source} has no function {name!r}; it has {sorted(functions)}"
        )
    return functions[name]


def input_signature(func: Any) -> dict[str, tuple[tuple[Any, ...], np.dtype]]:
    """``name -> (declared shape, dtype)`` of a function's tensor inputs (symbols for free dims)."""
    from coremltools.converters.mil.mil import types

    sig: dict[str, tuple[tuple[Any, ...], np.dtype]] = {}
    for name, var in func.inputs.items():
        if types.is_state(var.sym_type):
            continue
        dtype = mil_dtype_to_numpy(var.sym_type)
        if dtype is None:
            raise ExecutorError(f"execute: input {name!r} has unsupported type {var.sym_type}")
        shape = tuple(var.shape) if types.is_tensor(var.sym_type) else ()
        sig[name] = (shape, dtype)
    return sig


def prepare_inputs(
    func: Any,
    inputs: Mapping[str, np.ndarray],
    constraints: Mapping[str, InputConstraint] | None = None,
) -> dict[str, np.ndarray]:
    """Check ``inputs`` against ``func``'s declared inputs and cast them to the declared dtypes.

    Raises:
        ExecutorError: naming the input and what is wrong with it.
    """
    sig = input_signature(func)
    states = [n for n in func.inputs if n not in sig]
    unknown = sorted(set(inputs) - set(sig))
    if unknown:
        hint = f" ({', '.join(unknown)} is a state: pass it with state=)" if (
            set(unknown) & set(states)) else ""
        raise ExecutorError(
            f"execute: unknown inputs {unknown}; the program takes {list(sig)}{hint}"
        )
    missing = [n for n in sig if n not in inputs]
    if missing:
        raise ExecutorError(f"execute: missing inputs {missing}; the program takes {list(sig)}")
    bound: dict[Any, int] = {}
    feeds: dict[str, np.ndarray] = {}
    for name, (declared, dtype) in sig.items():
        arr = np.asarray(inputs[name])
        _check_shape(name, arr.shape, declared, bound, (constraints or {}).get(name))
        feeds[name] = _cast(name, arr, dtype)
    return feeds


def _check_shape(
    name: str,
    shape: tuple[int, ...],
    declared: tuple[Any, ...],
    bound: dict[Any, int],
    constraint: InputConstraint | None,
) -> None:
    shown = tuple(str(d) for d in declared)
    if len(shape) != len(declared):
        raise ExecutorError(
            f"execute: input {name!r} has shape {shape}, the program declares rank "
            f"{len(declared)} {shown}"
        )
    for axis, (size, want) in enumerate(zip(shape, declared)):
        if isinstance(want, (int, np.integer)):
            if size != int(want):
                raise ExecutorError(
                    f"execute: input {name!r} has shape {shape}, the program declares {shown} "
                    f"(dim {axis} must be {int(want)})"
                )
        elif want in bound and bound[want] != size:
            raise ExecutorError(
                f"execute: input {name!r} dim {axis} is {size} but symbol {want} was bound to "
                f"{bound[want]} by an earlier input; the program declares {shown}"
            )
        else:
            bound[want] = size
    if constraint is not None:
        why = constraint.check(shape)
        if why:
            raise ExecutorError(f"execute: input {name!r}: {why}")


def _cast(name: str, arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``arr`` as ``dtype``, refusing lossy kind changes and integer overflow."""
    if arr.dtype == dtype:
        return arr
    kind, want = arr.dtype.kind, dtype.kind
    if kind not in "biuf":
        raise ExecutorError(f"execute: input {name!r} has dtype {arr.dtype}; expected {dtype}")
    if want == "f":
        return arr.astype(dtype)
    if want == "b":
        if kind == "b":
            return arr
        raise ExecutorError(
            f"execute: input {name!r} has dtype {arr.dtype}; the program declares bool"
        )
    if kind == "f":
        raise ExecutorError(
            f"execute: input {name!r} has dtype {arr.dtype}; the program declares {dtype}: "
            "cast it explicitly (refusing to truncate floats)"
        )
    info = np.iinfo(dtype)
    if arr.size and (arr.min() < info.min or arr.max() > info.max):
        raise ExecutorError(
            f"execute: input {name!r} has values in [{arr.min()}, {arr.max()}], outside "
            f"{dtype}'s range [{info.min}, {info.max}]"
        )
    return arr.astype(dtype)
