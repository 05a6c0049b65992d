"""Shared measurement helpers of the benchmarks: one measurement per subprocess, op counts.

* :func:`isolated` runs a module-level function in a fresh (spawned) process with a time limit,
  and adds the process's wall time and peak resident memory to what the function returns; a
  crash, a hang or an exception costs one cell of a table, never the run.
* :func:`mil_op_count` counts the non-const MIL operations of a program (nested blocks too).
* :func:`first_line` is the one-line form of an exception used in tables.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue as queue_mod
import resource
import time
import traceback
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: Characters of an error message kept in tables and JSON.
ERROR_CHARS = 240


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (truncated to :data:`ERROR_CHARS`)."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:ERROR_CHARS]


def mil_op_count(program: Any) -> int:
    """Non-const MIL ops of ``program``, nested blocks included."""
    from pipeline.lowering.stage import mil_op_histogram

    return sum(mil_op_histogram(program).values())


def peak_rss_mb() -> float:
    """High-water mark of this process's resident memory in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def inline(fn: Callable[..., dict[str, Any]], args: tuple[Any, ...]) -> dict[str, Any]:
    """Run ``fn(*args)`` in this process: the dict of :func:`isolated`, without the isolation.

    ``peak_mb`` is then this process's high-water mark so far, not the measurement's own.
    """
    start = time.perf_counter()
    try:
        out = dict(fn(*args))
    except Exception as exc:  # noqa: BLE001  (one failure is one cell of the table)
        out = {"error": first_line(exc), "trace": traceback.format_exc()[-3000:]}
    out["wall_s"] = time.perf_counter() - start
    out["peak_mb"] = peak_rss_mb()
    return out


def _child(fn: Callable[..., dict[str, Any]], args: tuple[Any, ...], queue: Any) -> None:
    import warnings

    logging.disable(logging.WARNING)  # peers' warnings would drown the benchmark's progress lines
    warnings.simplefilter("ignore")
    os.environ.setdefault("TQDM_DISABLE", "1")
    queue.put(inline(fn, args))


def isolated(fn: Callable[..., dict[str, Any]], args: tuple[Any, ...], timeout: float) -> dict[str, Any]:
    """Run ``fn(*args)`` in a spawned process; its dict plus ``wall_s`` and ``peak_mb``.

    ``fn`` must be importable by the child (a module-level function).  On an exception the dict
    is ``{"error": first line, "trace": ...}``; on a timeout or a crash, ``{"error": ...}``.
    """
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, args, queue))
    start = time.perf_counter()
    proc.start()
    result: dict[str, Any] | None = None
    # Read before join: a child blocked on a full pipe would never exit.
    deadline = start + timeout
    while result is None and time.perf_counter() < deadline:
        try:
            result = queue.get(timeout=min(1.0, max(0.01, deadline - time.perf_counter())))
        except queue_mod.Empty:  # still running
            if not proc.is_alive() and queue.empty():
                break
    if result is None and proc.is_alive():
        proc.kill()
        proc.join()
        return {"error": f"timed out after {timeout:.0f}s", "wall_s": time.perf_counter() - start}
    proc.join(5)
    if result is None:
        return {"error": f"subprocess died (exit code {proc.exitcode})",
                "wall_s": time.perf_counter() - start}
    return result
