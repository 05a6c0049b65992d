"""ONNX's own backend node tests, one per supported op, in the default run.

For each default-domain op with a lowering handler, the first of onnx's node tests for that op
(by name) is lowered, run on our executor and compared with onnx's expected outputs at onnx's
tolerances (``pipeline.conformance.run_case``).  ``bench/conformance.py`` runs all of them.
Known failures are listed with their reason in ``xfails.py`` and run as strict xfails.
"""

from __future__ import annotations

import functools

import pytest

from pipeline.conformance import RANDOM_OPS, case_op, iter_cases, run_case
from tests.conformance.xfails import XFAILS


@functools.lru_cache(maxsize=1)
def _first_case_per_op() -> dict[str, object]:
    import pipeline.lowering  # noqa: F401  (registers handlers)
    from pipeline.lowering.registry import HANDLERS

    supported = set(HANDLERS.names(""))
    chosen: dict[str, object] = {}
    for case in sorted(iter_cases(), key=lambda c: c.name):
        op = case_op(case.model)
        if op in supported and op not in RANDOM_OPS and op not in chosen:
            chosen[op] = case
    return chosen


def _params() -> list[object]:
    params = []
    for op, case in sorted(_first_case_per_op().items()):
        marks = []
        if case.name in XFAILS:
            marks.append(pytest.mark.xfail(strict=True, reason=XFAILS[case.name]))
        params.append(pytest.param(case, id=f"{op}:{case.name}", marks=marks))
    return params


@pytest.mark.parametrize("case", _params())
def test_node(case) -> None:
    result = run_case(case, timeout=120)
    assert result.outcome == "passed", f"{result.outcome}: {result.detail}"


def test_every_xfail_is_still_a_chosen_case() -> None:
    chosen = {c.name for c in _first_case_per_op().values()}
    assert set(XFAILS) <= chosen, f"stale entries in xfails.py: {sorted(set(XFAILS) - chosen)}"
