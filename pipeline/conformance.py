"""ONNX's own backend node tests run through stage two and our executor.

``onnx.backend.test.case.node.collect_testcases()`` yields every node test (model, input and
expected output arrays, tolerances).  Each case is lowered, run with the executor, and compared
with the expected outputs using onnx's own rtol/atol.  Outcomes:

* ``passed`` - every output within tolerance;
* ``wrong`` - lowered and ran, but an output differs (or has the wrong shape/dtype);
* ``unsupported`` - the lowering raised UnsupportedOpError (an op or attribute we don't lower);
* ``error`` - anything else (lowering bug, executor failure, coremltools rejecting the program).
"""

from __future__ import annotations

import dataclasses
import signal
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError

OUTCOMES = ("passed", "wrong", "unsupported", "error")


@dataclasses.dataclass
class CaseResult:
    name: str
    op: str
    outcome: str
    detail: str = ""


def case_op(model: Any) -> str:
    """The op a node test is about: its single non-Constant node's type, else its first one."""
    ops = [n.op_type for n in model.graph.node if n.op_type != "Constant"]
    if not ops:
        return "Constant"
    return ops[0] if len(set(ops)) == 1 else ops[-1] if len(ops) == 1 else ops[0]


def iter_cases(ops: set[str] | None = None, pattern: str | None = None) -> Iterator[Any]:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    for case in cases:
        if case.model is None or "_expanded" in case.name:
            continue
        if ops is not None and case_op(case.model) not in ops:
            continue
        if pattern and pattern not in case.name:
            continue
        yield case


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout()


def _compare(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> str:
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        return f"shape {actual.shape} != {expected.shape}"
    if expected.dtype.kind in "OUS":
        return "" if np.array_equal(actual, expected) else "string values differ"
    if expected.dtype.kind == "f" or actual.dtype.kind == "f":
        a = actual.astype(np.float64)
        e = expected.astype(np.float64)
        close = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
        if close.all():
            return ""
        return f"max abs err {np.nanmax(np.abs(a - e)):.3g} ({int((~close).sum())}/{close.size} elements)"
    return "" if np.array_equal(actual, expected.astype(actual.dtype) if expected.dtype != actual.dtype else expected) else "values differ"


def run_case(case: Any, timeout: int = 60, target: str = "iOS18") -> CaseResult:
    """Lower, execute and compare one node test."""
    from pipeline.lowering import lower

    op = case_op(case.model)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout)
    try:
        result = lower(case.model, target=target, verify=False)
        for inputs, expected in case.data_sets:
            names = [i.name for i in case.model.graph.input if i.name not in {t.name for t in case.model.graph.initializer}]
            feeds = dict(zip(names, inputs))
            actual = result.predict(feeds)
            for out, exp in zip(case.model.graph.output, expected):
                if out.name not in actual:
                    return CaseResult(case.name, op, "wrong", f"output {out.name} missing")
                problem = _compare(actual[out.name], exp, case.rtol, case.atol)
                if problem:
                    return CaseResult(case.name, op, "wrong", f"{out.name}: {problem}")
        return CaseResult(case.name, op, "passed")
    except UnsupportedOpError as exc:
        return CaseResult(case.name, op, "unsupported", str(exc).splitlines()[0][:300])
    except _Timeout:
        return CaseResult(case.name, op, "error", f"timed out after {timeout}s")
    except Exception as exc:  # a conformance run records every failure and goes on
        return CaseResult(case.name, op, "error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
