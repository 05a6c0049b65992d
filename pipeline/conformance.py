"""ONNX's own backend node tests run through stage two and our executor.

``onnx.backend.test.case.node.collect_testcases()`` yields every node test (model, input and
expected output arrays, tolerances).  Each case is lowered, run with the executor, and compared
with the expected outputs using onnx's own rtol/atol.  Outcomes:

* ``passed`` - every output within tolerance;
* ``wrong`` - lowered and ran, but an output differs (or has the wrong shape/dtype);
* ``unsupported`` - the lowering raised UnsupportedOpError / UnsupportedTypeError (an op,
  attribute or element type Core ML has no form for);
* ``error`` - anything else (lowering bug, executor failure, coremltools rejecting the program);
* ``random`` - a random-number op: its values cannot match another generator's, so it is not
  scored (its lowering is tested on shape, dtype and statistics in tests/lowering/test_random.py).

ONNX's node tests feed parameters such as axes, sizes, K or split as run-time graph inputs,
where exported models carry them as constants and Core ML needs them constant (or, when empty,
cannot even take them as inputs).  When a case is unsupported, it is run again with those integer inputs frozen into
initializers (the data set's values); a pass then counts as ``passed`` with ``frozen=True``, and
the report gives both figures.
"""

from __future__ import annotations

import dataclasses
import signal
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import onnx

from pipeline.errors import UnsupportedOpError, UnsupportedTypeError

OUTCOMES = ("passed", "wrong", "unsupported", "error", "random")

RANDOM_OPS = {"Bernoulli", "Multinomial", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike"}


@dataclasses.dataclass
class CaseResult:
    name: str
    op: str
    outcome: str
    detail: str = ""
    frozen: bool = False


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


def _array(value: Any) -> np.ndarray:
    """Node-test data come as numpy arrays or (for exotic dtypes) as TensorProtos."""
    if isinstance(value, onnx.TensorProto):
        return onnx.numpy_helper.to_array(value)
    return np.asarray(value)


def _compare(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> str:
    actual = np.asarray(actual)
    expected = _array(expected)
    if expected.dtype.kind == "V":  # bfloat16 / float8 (ml_dtypes): compare as floats
        expected = expected.astype(np.float32)
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


def _freeze_parameters(case: Any) -> tuple[Any, set[str]] | None:
    """The case's model with its small integer inputs turned into initializers, or None.

    Only inputs of rank <= 1 whose value is the same in every data set qualify, and floats only
    past the first input: they are parameters (axes, sizes, K, scales, ...), not data.
    """
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    frozen: set[str] = set()
    for idx, vi in enumerate(inputs):
        if not all(isinstance(ds[0][idx], (np.ndarray, np.generic, onnx.TensorProto)) for ds in case.data_sets):
            continue  # sequences, optionals: data, never parameters
        values = [_array(ds[0][idx]) for ds in case.data_sets]
        first = values[0]
        parameter = first.ndim <= 1 and (first.dtype.kind in "iu" or (idx > 0 and first.dtype.kind == "f"))
        if not parameter or any(not np.array_equal(v, first) for v in values):
            continue
        model.graph.initializer.append(onnx.numpy_helper.from_array(first, vi.name))
        frozen.add(vi.name)
    if not frozen:
        return None
    keep = [vi for vi in model.graph.input if vi.name not in frozen]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return model, frozen


def run_case(case: Any, timeout: int = 60, target: str = "iOS18") -> CaseResult:
    """Lower, execute and compare one node test (see the module docstring for the outcomes)."""
    op = case_op(case.model)
    if op in RANDOM_OPS:
        return CaseResult(case.name, op, "random", "values of a random op are not comparable")
    result = _run(case, case.model, set(), timeout, target)
    if result.outcome == "unsupported":
        frozen = _freeze_parameters(case)
        if frozen is not None:
            again = _run(case, frozen[0], frozen[1], timeout, target)
            if again.outcome != "unsupported":
                again.frozen = True
                return again
    return result


def _run(case: Any, model: Any, frozen: set[str], timeout: int, target: str) -> CaseResult:
    from pipeline.lowering import lower

    op = case_op(case.model)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout)
    try:
        result = lower(model, target=target, verify=False)
        names = [i.name for i in case.model.graph.input if i.name not in {t.name for t in case.model.graph.initializer}]
        for inputs, expected in case.data_sets:
            feeds = {n: _array(v) for n, v in zip(names, inputs) if n not in frozen}
            actual = result.predict(feeds)
            for out, exp in zip(case.model.graph.output, expected):
                if out.name not in actual:
                    return CaseResult(case.name, op, "wrong", f"output {out.name} missing")
                problem = _compare(actual[out.name], exp, case.rtol, case.atol)
                if problem:
                    return CaseResult(case.name, op, "wrong", f"{out.name}: {problem}")
        return CaseResult(case.name, op, "passed")
    except (UnsupportedOpError, UnsupportedTypeError) as exc:
        return CaseResult(case.name, op, "unsupported", str(exc).splitlines()[0][:300])
    except _Timeout:
        return CaseResult(case.name, op, "error", f"timed out after {timeout}s")
    except Exception as exc:  # noqa: BLE001 - a conformance run records every failure and goes on
        return CaseResult(case.name, op, "error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
