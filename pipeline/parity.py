"""Numeric comparison of two sets of named outputs: the one parity measure of the project.

Used by stage one (onnxruntime vs PyTorch), the executor's verify command (MIL vs a reference)
and stage two (MIL vs onnxruntime).  An element mismatches when
``|actual - expected| > atol + rtol * |expected|`` (numpy's ``allclose`` rule).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np


@dataclasses.dataclass
class OutputParity:
    """How one output compares."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    max_abs: float
    max_rel: float
    cosine: float
    mismatches: int
    size: int
    ok: bool
    note: str = ""
    #: |actual - expected| distribution for the report's plot; see :func:`error_histogram`.
    histogram: dict[str, object] | None = None

    def line(self) -> str:
        status = "ok  " if self.ok else "FAIL"
        text = (
            f"{status} {self.name}: max_abs={self.max_abs:.3g} max_rel={self.max_rel:.3g} "
            f"cosine={self.cosine:.6f} mismatches={self.mismatches}/{self.size}"
        )
        return text + (f" ({self.note})" if self.note else "")


@dataclasses.dataclass
class ParityReport:
    """Per-output figures and the tolerance they were judged by."""

    outputs: list[OutputParity]
    atol: float
    rtol: float
    reference: str = ""
    candidate: str = ""

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outputs)

    @property
    def max_abs(self) -> float:
        return max((o.max_abs for o in self.outputs), default=0.0)

    def failures(self) -> list[OutputParity]:
        return [o for o in self.outputs if not o.ok]

    def summary(self) -> str:
        head = f"parity {self.candidate or 'candidate'} vs {self.reference or 'reference'} "
        head += f"(atol={self.atol:g}, rtol={self.rtol:g})"
        return "\n".join([head] + ["  " + o.line() for o in self.outputs])

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "atol": self.atol,
            "rtol": self.rtol,
            "reference": self.reference,
            "candidate": self.candidate,
            "outputs": [dataclasses.asdict(o) for o in self.outputs],
        }


def compare_arrays(
    name: str, actual: np.ndarray, expected: np.ndarray, *, atol: float, rtol: float
) -> OutputParity:
    """Compare one output; shape or kind mismatches are failures with a note, not exceptions."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        return OutputParity(
            name, tuple(expected.shape), str(expected.dtype), float("inf"), float("inf"), 0.0,
            int(expected.size), int(expected.size), False,
            f"shape {tuple(actual.shape)} != expected {tuple(expected.shape)}",
        )
    size = int(expected.size)
    if size == 0:
        return OutputParity(name, tuple(expected.shape), str(expected.dtype), 0.0, 0.0, 1.0, 0, 0, True)
    if expected.dtype == np.bool_ or actual.dtype == np.bool_:
        a = actual.astype(bool)
        e = expected.astype(bool)
        bad = int(np.count_nonzero(a != e))
        return OutputParity(
            name, tuple(expected.shape), str(expected.dtype), float(bad > 0), float(bad > 0),
            1.0 if bad == 0 else 0.0, bad, size, bad == 0,
        )
    a64 = actual.astype(np.float64)
    e64 = expected.astype(np.float64)
    same_nan = np.isnan(a64) & np.isnan(e64)
    same_inf = np.isinf(e64) & (a64 == e64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf where both are inf
        diff = np.where(same_nan | same_inf, 0.0, np.abs(a64 - e64))
    diff = np.where(np.isnan(diff), np.inf, diff)
    max_abs = float(diff.max())
    denom = np.abs(e64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / np.where(denom == 0, np.inf, denom))
        rel = np.where((diff > 0) & (denom == 0), np.inf, rel)
    max_rel = float(rel.max())
    mismatches = int(np.count_nonzero(diff > atol + rtol * np.where(np.isinf(denom), 0, denom)))
    with np.errstate(divide="ignore", invalid="ignore"):
        allowed = atol + rtol * np.where(np.isinf(denom), 0, denom)
        histogram = error_histogram(diff, np.where(diff == 0, 0.0, diff / allowed))
    finite = np.isfinite(a64) & np.isfinite(e64)
    na = np.linalg.norm(a64[finite])
    ne = np.linalg.norm(e64[finite])
    if na == 0 and ne == 0:
        cosine = 1.0
    elif na == 0 or ne == 0:
        cosine = 0.0
    else:
        cosine = float(np.dot(a64[finite], e64[finite]) / (na * ne))
    return OutputParity(
        name, tuple(expected.shape), str(expected.dtype), max_abs, max_rel, cosine,
        mismatches, size, mismatches == 0, histogram=histogram,
    )


#: Histogram bins of :func:`error_histogram`: decades from 1e-12 to 1e4, two bins per decade.
HIST_LOG10_EDGES = tuple(x / 2 for x in range(-24, 9))


def error_histogram(diff: np.ndarray, ratio: np.ndarray) -> dict[str, object]:
    """Counts of log10 |error| and of log10 (|error| / allowed error) over fixed half-decade bins.

    ``allowed = atol + rtol * |expected|``, so a ratio above 1 is a mismatch.  Exact zeros, values
    below the first edge (``under``), above the last (``over``) and non-finite ones are counted
    apart, so that every element is accounted for.
    """
    edges = np.asarray(HIST_LOG10_EDGES)

    def bucket(values: np.ndarray) -> dict[str, object]:
        flat = values.ravel()
        finite = flat[np.isfinite(flat)]
        positive = finite[finite > 0]
        with np.errstate(divide="ignore"):
            logs = np.log10(positive)
        counts, _ = np.histogram(logs, bins=edges)
        return {
            "counts": [int(c) for c in counts],
            "zeros": int(np.count_nonzero(finite == 0)),
            "under": int(np.count_nonzero(logs < edges[0])),
            "over": int(np.count_nonzero(logs > edges[-1])),
            "nonfinite": int(flat.size - finite.size),
        }

    with np.errstate(divide="ignore", invalid="ignore"):
        return {"log10_edges": list(HIST_LOG10_EDGES), "abs": bucket(diff), "ratio": bucket(ratio)}


def compare(
    actual: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray],
    *,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    reference: str = "",
    candidate: str = "",
) -> ParityReport:
    """Compare every output of ``expected`` with the same-named output of ``actual``."""
    rows = []
    for name, exp in expected.items():
        if name not in actual:
            rows.append(
                OutputParity(name, tuple(np.shape(exp)), str(np.asarray(exp).dtype), float("inf"),
                             float("inf"), 0.0, int(np.size(exp)), int(np.size(exp)), False,
                             "missing from candidate outputs")
            )
            continue
        rows.append(compare_arrays(name, actual[name], exp, atol=atol, rtol=rtol))
    return ParityReport(rows, atol, rtol, reference, candidate)


def is_degenerate(values: Mapping[str, np.ndarray]) -> list[str]:
    """Names of float outputs that are constant (e.g. all zero): parity on them proves nothing."""
    bad = []
    for name, arr in values.items():
        arr = np.asarray(arr)
        if arr.dtype.kind == "f" and arr.size > 1 and float(np.ptp(arr.astype(np.float64))) == 0.0:
            bad.append(name)
    return bad
