"""Runs the blocks of a MIL program op by op, dispatching each op to its registered kernel.

Ops handled here rather than by a kernel: ``const`` and ``_const_symbolic`` (their values are
read once per program).  Every other op goes to ``KERNELS.lookup(op_type, version=opset)``.

Each block is compiled once into a *plan* (kernels resolved, const values materialised,
``constexpr_*`` ops on consts evaluated, the last use of every value known so that intermediate
arrays are freed as soon as nothing needs them); plans are cached per block object and rebuilt
when the block's op list changes.  Building a plan fails fast, naming the first op that has no
kernel, before any op runs.

Profiling (opt-in): give :class:`Executor` an :class:`OpTimes` and it records the wall time of
every op call by op type (ops inside control-flow bodies are counted on their own and inside
their ``cond``/``while_loop`` op).  ``execute(..., profile=OpTimes())`` fills one; the
environment variable ``PIPELINE_EXECUTOR_PROFILE=1`` makes ``execute`` log the table at INFO.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import weakref
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

import numpy as np

from pipeline.errors import ExecutorError, UnsupportedMILOpError
from pipeline.executor.kernels.registry import KERNELS

log = logging.getLogger(__name__)

#: Ops the runner evaluates itself (no kernel): their value is the op's ``val``.
RUNNER_OPS = ("const", "_const_symbolic")

#: coremltools defines the iOS13/iOS14 opsets with the iOS15 op definitions; kernels start at 15.
_BASE_OPSET = 15

_CONST, _RUNTIME, _TUPLE = 0, 1, 2


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
    if types.is_state(mil_type) or types.is_list(mil_type) or types.is_dict(mil_type):
        return None
    if mil_type is types.str:
        return None
    try:
        return np.dtype(types.nptype_from_builtin(mil_type))
    except (TypeError, KeyError):
        return None


@dataclasses.dataclass
class OpTimes:
    """Calls and wall seconds per MIL op type, filled by an :class:`Executor` given one."""

    calls: dict[str, int] = dataclasses.field(default_factory=dict)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)

    def record(self, op_type: str, seconds: float) -> None:
        """Add one call of ``op_type`` that took ``seconds``."""
        self.calls[op_type] = self.calls.get(op_type, 0) + 1
        self.seconds[op_type] = self.seconds.get(op_type, 0.0) + seconds

    def table(self, top: int | None = None) -> str:
        """One line per op type, slowest first: type, calls, total ms, share of the total."""
        total = sum(self.seconds.values()) or 1.0
        rows = sorted(self.seconds.items(), key=lambda kv: -kv[1])[:top]
        lines = [f"{'op type':28} {'calls':>6} {'ms':>10} {'share':>6}"]
        lines += [
            f"{op:28} {self.calls[op]:6d} {1e3 * sec:10.2f} {100 * sec / total:5.1f}%"
            for op, sec in rows
        ]
        return "\n".join(lines)


@dataclasses.dataclass
class KernelContext:
    """What a ``ctx=True`` kernel can see beyond its inputs."""

    op: Any
    opset: int
    executor: Executor
    values: MutableMapping[str, Any]

    def run_block(self, block: Any, bindings: Mapping[str, Any]) -> list[Any]:
        """Run a nested block with its block inputs bound; returns its output values."""
        return self.executor.run_block(block, self.values, bindings, self.opset)

    @property
    def state(self) -> dict[str, Any]:
        return self.executor.state


@dataclasses.dataclass
class _Step:
    """One non-const op of a block, ready to call."""

    op: Any
    fn: Callable[..., Any]
    ctx: bool
    args: list[tuple[str, int, Any]]
    out_names: list[str]
    out_dtypes: list[np.dtype | None]
    drop: tuple[str, ...] = ()


@dataclasses.dataclass
class _Plan:
    fingerprint: tuple[int, ...]
    steps: list[_Step]
    consts: dict[str, Any]
    outputs: list[tuple[int, Any]]
    nested: dict[int, _Plan] = dataclasses.field(default_factory=dict)


# Plans of functions (weak-referenceable); nested blocks' plans live in their function's plan.
_PLANS: weakref.WeakKeyDictionary[Any, _Plan] = weakref.WeakKeyDictionary()


def _fingerprint(block: Any) -> tuple[int, ...]:
    return tuple(id(op) for op in block.operations)


def iter_ops(block: Any) -> Iterator[Any]:
    """Every op of ``block`` and of its nested blocks, depth first."""
    for op in block.operations:
        yield op
        for inner in op.blocks:
            yield from iter_ops(inner)


def unsupported_ops(block: Any, opset: int) -> list[tuple[str, str]]:
    """``(op name, op type)`` of every op in ``block`` (nested too) that has no kernel."""
    version = max(opset, _BASE_OPSET)
    return [
        (op.name, op.op_type)
        for op in iter_ops(block)
        if op.op_type not in RUNNER_OPS and KERNELS.lookup(op.op_type, version=version) is None
    ]


class Executor:
    """Evaluates MIL blocks with the kernel registry.

    ``state`` maps the names of state inputs to their current arrays, for stateful programs.
    """

    def __init__(
        self,
        state: dict[str, Any] | None = None,
        profile: OpTimes | None = None,
        observe: Callable[[str, Any], None] | None = None,
    ) -> None:
        self.state: dict[str, Any] = state if state is not None else {}
        self.profile = profile
        #: Called with (value name, value) for every value an op computes (``--localize``).
        self.observe = observe
        self._plans: dict[int, _Plan] = {}

    # -- plans --------------------------------------------------------------------------
    def plan(self, block: Any, opset: int) -> _Plan:
        """The cached plan of ``block`` (built on first use or when its ops changed)."""
        fingerprint = _fingerprint(block)
        plan = self._plans.get(id(block))
        if plan is not None and plan.fingerprint == fingerprint:
            return plan
        try:
            plan = _PLANS.get(block)
        except TypeError:  # nested blocks cannot be weakly referenced: planned with the function
            plan = None
        if plan is None or plan.fingerprint != fingerprint:
            plan = self._build_plan(block, opset, fingerprint, {})
            try:
                _PLANS[block] = plan
            except TypeError:
                pass
        self._plans.update(plan.nested)
        self._plans[id(block)] = plan
        return plan

    def _build_plan(
        self, block: Any, opset: int, fingerprint: tuple[int, ...], nested: dict[int, _Plan]
    ) -> _Plan:
        consts: dict[str, Any] = {}
        steps: list[_Step] = []
        version = max(opset, _BASE_OPSET)
        for op in block.operations:
            if op.op_type in RUNNER_OPS:
                consts[op.outputs[0].name] = _const_value(op.outputs[0])
                continue
            entry = KERNELS.lookup(op.op_type, version=version)
            if entry is None:
                known = KERNELS.versions(op.op_type)
                detail = f" (kernels exist from iOS{known[0].since})" if known else ""
                raise UnsupportedMILOpError(
                    f"execute: op '{op.name}' of type '{op.op_type}' at opset iOS{opset} has no "
                    f"kernel{detail}; register one with pipeline.executor.kernels.mil_kernel"
                )
            for inner in op.blocks:  # fail fast on nested blocks too
                nested[id(inner)] = self._build_plan(inner, opset, _fingerprint(inner), nested)
            args = [(name, *_arg_ref(var, consts)) for name, var in op.inputs.items()]
            step = _Step(
                op, entry.value, bool(entry.meta.get("ctx")), args,
                [v.name for v in op.outputs],
                [mil_dtype_to_numpy(v.sym_type) for v in op.outputs],
            )
            if op.op_type.startswith("constexpr_") and all(k == _CONST for _, k, _ in args):
                # Decompression of const weights: done once per program, not per call.
                results = self._call(step, {}, opset)
                consts.update(zip(step.out_names, results))
                continue
            steps.append(step)
        outputs = [_arg_ref(var, consts) for var in block.outputs]
        _assign_drops(block, steps)
        return _Plan(fingerprint, steps, consts, outputs, nested)

    # -- running ------------------------------------------------------------------------
    def run_block(
        self,
        block: Any,
        outer: Mapping[str, Any],
        bindings: Mapping[str, Any],
        opset: int,
    ) -> list[Any]:
        """Run ``block`` seeing ``outer``'s values, with its block inputs taken from ``bindings``."""
        plan = self.plan(block, opset)
        values: MutableMapping[str, Any]
        local: dict[str, Any] = {}
        values = ChainMap(local, outer) if outer else local  # type: ignore[arg-type]
        block_inputs = block.inputs.values() if isinstance(block.inputs, dict) else block.inputs
        for inp in block_inputs:
            if inp.name in bindings:
                local[inp.name] = bindings[inp.name]
        local.update(plan.consts)
        profile = self.profile
        for step in plan.steps:
            if profile is None:
                results = self._call(step, values, opset)
            else:
                start = time.perf_counter()
                results = self._call(step, values, opset)
                profile.record(step.op.op_type, time.perf_counter() - start)
            for name, result in zip(step.out_names, results):
                local[name] = result
            if self.observe is not None:
                for name, result in zip(step.out_names, results):
                    self.observe(name, result)
            for name in step.drop:
                local.pop(name, None)
        return [_resolve(kind, ref, values) for kind, ref in plan.outputs]

    def run_op(self, op: Any, values: dict[str, Any], opset: int) -> list[Any]:
        """Run a single op (planned on the fly) against ``values``."""
        if op.op_type in RUNNER_OPS:
            return [_const_value(op.outputs[0])]
        entry = KERNELS.lookup(op.op_type, version=max(opset, _BASE_OPSET))
        if entry is None:
            raise UnsupportedMILOpError(
                f"execute: op '{op.name}' of type '{op.op_type}' at opset iOS{opset} has no kernel"
            )
        step = _Step(
            op, entry.value, bool(entry.meta.get("ctx")),
            [(name, *_arg_ref(var, {})) for name, var in op.inputs.items()],
            [v.name for v in op.outputs], [mil_dtype_to_numpy(v.sym_type) for v in op.outputs],
        )
        return self._call(step, values, opset)

    def _call(self, step: _Step, values: MutableMapping[str, Any], opset: int) -> list[Any]:
        op = step.op
        kwargs = {name: _resolve(kind, ref, values) for name, kind, ref in step.args}
        try:
            if step.ctx:
                result = step.fn(KernelContext(op, opset, self, values), **kwargs)
            else:
                result = step.fn(**kwargs)
        except ExecutorError:
            raise
        except Exception as exc:
            raise ExecutorError(
                f"execute: op '{op.name}' ({op.op_type}, iOS{opset}) failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        # A kernel returns a tuple/list per output, or one value (MIL lists are ListValue objects).
        if not isinstance(result, (tuple, list)):
            result = (result,)
        if len(result) != len(step.out_names):
            raise ExecutorError(
                f"execute: kernel for {op.op_type} returned {len(result)} values, "
                f"op '{op.name}' has {len(step.out_names)} outputs"
            )
        return [_coerce(r, d) for r, d in zip(result, step.out_dtypes)]


def _arg_ref(var: Any, consts: Mapping[str, Any]) -> tuple[int, Any]:
    """How to fetch an op input at run time: a const value, a value name, or a tuple of refs."""
    if isinstance(var, (list, tuple)):
        return (_TUPLE, [_arg_ref(v, consts) for v in var])
    if var.name in consts:
        return (_CONST, consts[var.name])
    producer = getattr(var, "op", None)
    if producer is not None and producer.op_type in RUNNER_OPS:
        return (_CONST, _const_value(var))
    return (_RUNTIME, var)


def _resolve(kind: int, ref: Any, values: Mapping[str, Any]) -> Any:
    if kind == _CONST:
        return ref
    if kind == _TUPLE:
        return [_resolve(k, r, values) for k, r in ref]
    try:
        return values[ref.name]
    except KeyError:
        if ref.val is not None:
            return _const_value(ref)
        raise ExecutorError(f"execute: value {ref.name!r} is used before it is computed") from None


def _names_used(op: Any) -> set[str]:
    """Names of the values ``op`` reads, including those read inside its nested blocks."""
    names: set[str] = set()

    def add(var: Any) -> None:
        if isinstance(var, (list, tuple)):
            for v in var:
                add(v)
        else:
            names.add(var.name)

    for var in op.inputs.values():
        add(var)
    for inner in op.blocks:
        for inner_op in inner.operations:
            names |= _names_used(inner_op)
        for var in inner.outputs:
            add(var)
    return names


def _assign_drops(block: Any, steps: list[_Step]) -> None:
    """Mark, on each step, the local values nobody reads after it (freed to bound memory)."""
    keep = {v.name for v in block.outputs}
    last: dict[str, int] = {}
    for i, step in enumerate(steps):
        for name in _names_used(step.op):
            last[name] = i
    drops: dict[int, list[str]] = {}
    for name, i in last.items():
        if name not in keep:
            drops.setdefault(i, []).append(name)
    for i, step in enumerate(steps):
        # Outputs nobody reads are dropped right away too.
        unused = [n for n in step.out_names if n not in last and n not in keep]
        step.drop = tuple(drops.get(i, [])) + tuple(unused)


def _const_value(var: Any) -> Any:
    from coremltools.converters.mil.mil.operation import mil_list
    from coremltools.converters.mil.mil.types.symbolic import any_symbolic

    val = var.val
    if val is None and var.sym_val is not None:
        raise ExecutorError(
            f"execute: const {var.name!r} holds a symbolic value {var.sym_val}; "
            "give the program concrete shapes"
        )
    if isinstance(val, (str, bool)) or val is None:
        return val
    if isinstance(val, mil_list):
        return list(val.ls)
    if isinstance(val, np.ndarray) and val.dtype == object and any_symbolic(val):
        raise ExecutorError(f"execute: const {var.name!r} holds a symbolic value {val}")
    dtype = mil_dtype_to_numpy(var.sym_type)
    arr = np.asarray(val)
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr


def _coerce(result: Any, dtype: np.dtype | None) -> Any:
    """Cast a kernel result to the dtype the op declares for this output."""
    if dtype is None or result is None or isinstance(result, (str, list, dict)):
        return result
    arr = np.asarray(result)
    if arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr
