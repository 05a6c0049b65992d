"""The pass manager: a registry of named graph-surgery passes and the loop that runs them.

A pass is a function ``(model: onnx_ir.Model) -> bool`` that edits the model in place and
returns whether it changed anything.  It is registered by name with :func:`register_pass`;
:func:`run_passes` converts the ONNX proto to onnx_ir once, runs the selected passes in order,
records node counts and op histograms before and after each, and serializes the result.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

import onnx
import onnx_ir as ir

from pipeline.errors import RewriteError
from pipeline.registry import Registry

logger = logging.getLogger(__name__)

PassFn = Callable[[ir.Model], bool]

#: Every pass, keyed by ``("", name)``; ``meta`` holds ``description``, ``default``, ``after``.
PASSES: Registry[PassFn] = Registry("rewrite pass")

#: Filled by ``rewrites/__init__.py``: the documented order of the built-in passes.
_builtin_order: list[str] = []


@dataclasses.dataclass
class PassRecord:
    """What one pass did to the model (the export report lists these)."""

    name: str
    nodes_before: int
    nodes_after: int
    changed: bool
    seconds: float
    op_histogram_before: dict[str, int]
    op_histogram_after: dict[str, int]

    def line(self) -> str:
        """One human-readable line: ``fuse_gelu: 120 -> 96 nodes (0.012 s)``."""
        flag = "" if self.changed else " (unchanged)"
        return (
            f"{self.name}: {self.nodes_before} -> {self.nodes_after} nodes "
            f"({self.seconds:.3f} s){flag}"
        )


def register_pass(
    name: str,
    description: str,
    *,
    default: bool = True,
    after: str | None = None,
    user: bool = True,
    override: bool = False,
) -> Callable[[PassFn], PassFn]:
    """Decorator registering ``fn(model: onnx_ir.Model) -> bool`` as the rewrite pass ``name``.

    Args:
        name: the pass name used by ``--rewrites`` (``--rewrites=-name`` skips it).
        description: one line shown by ``--list-rewrites``.
        default: whether the pass runs when the user selects nothing.
        after: run right after this pass (a user pass without it runs after all built-ins).
        user: False only for the built-in passes of this package.
        override: replace an existing pass registered under the same name by the same party.

    Returns:
        The decorator; it returns the function unchanged.
    """

    def deco(fn: PassFn) -> PassFn:
        PASSES.add(
            name, fn, user=user, override=override,
            description=description, default=default, after=after,
        )
        return fn

    return deco


def pass_order() -> list[str]:
    """Every registered pass name in run order: built-ins as documented, then user passes."""
    order = [n for n in _builtin_order if n in PASSES]
    for name in PASSES.names():
        if name in order:
            continue
        anchor = PASSES.lookup(name).meta.get("after")  # type: ignore[union-attr]
        order.insert(order.index(anchor) + 1 if anchor in order else len(order), name)
    return order


def list_passes() -> list[tuple[str, str, bool]]:
    """``(name, one-line description, on by default)`` for every pass, in run order."""
    rows = []
    for name in pass_order():
        entry = PASSES.lookup(name)
        assert entry is not None  # pass_order only yields registered names
        rows.append((name, str(entry.meta.get("description", "")), bool(entry.meta["default"])))
    return rows


def _check_names(names: Sequence[str], what: str) -> None:
    valid = pass_order()
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise RewriteError(
            f"rewrites: unknown pass name(s) {', '.join(map(repr, unknown))} in {what}. "
            f"Valid names: {', '.join(valid)} (see --list-rewrites)."
        )


def _selected(select: list[str] | None, disable: Sequence[str]) -> list[str]:
    if select is not None:
        _check_names(select, "--rewrites")
    _check_names(disable, "--rewrites=-NAME")
    rows = list_passes()
    if select is None:
        names = [name for name, _, on in rows if on]
    else:
        wanted = set(select)
        names = [name for name, _, _ in rows if name in wanted]
    return [n for n in names if n not in set(disable)]


def op_histogram(model: ir.Model) -> dict[str, int]:
    """Count of each op (``Domain::Op`` outside the default domain) over graphs and functions."""
    counts: collections.Counter[str] = collections.Counter()
    graphs: list[ir.Graph | ir.Function] = [model.graph, *model.functions.values()]
    for graph in graphs:
        for node in ir.traversal.RecursiveGraphIterator(graph):
            counts[f"{node.domain}::{node.op_type}" if node.domain else node.op_type] += 1
    return dict(sorted(counts.items()))


def run_passes(
    model: onnx.ModelProto,
    *,
    select: list[str] | None = None,
    disable: Sequence[str] = (),
    after_each: Callable[[str, onnx.ModelProto], None] | None = None,
) -> tuple[onnx.ModelProto, list[PassRecord]]:
    """Run the default passes (or exactly ``select``, in run order) minus ``disable``.

    Args:
        model: the ONNX model; it is not modified.
        select: pass names to run instead of the defaults (order is always the run order).
        disable: pass names to skip.
        after_each: called as ``after_each(name, model_after_that_pass)`` after every pass.

    Returns:
        The rewritten model and one :class:`PassRecord` per pass run.

    Raises:
        RewriteError: a name is unknown, or a pass raised.
    """
    names = _selected(select, disable)
    copy = onnx.ModelProto()
    copy.CopyFrom(model)  # onnx_ir tensors may view the proto's bytes: never touch the caller's
    ir_model = ir.serde.deserialize_model(copy)
    records: list[PassRecord] = []
    for name in names:
        fn = PASSES.get(name)
        pass_logger = logging.getLogger(getattr(fn, "__module__", __name__))
        before = op_histogram(ir_model)
        start = time.perf_counter()
        try:
            modified = bool(fn(ir_model))
        except RewriteError:
            raise
        except Exception as exc:
            raise RewriteError(
                f"rewrites: pass {name!r} failed: {type(exc).__name__}: {exc}. "
                f"Skip it with --rewrites=-{name} and report the model."
            ) from exc
        seconds = time.perf_counter() - start
        after = op_histogram(ir_model)
        record = PassRecord(
            name, sum(before.values()), sum(after.values()), modified or before != after,
            seconds, before, after,
        )
        pass_logger.info(
            "%s: %d -> %d nodes in %.3f s", name, record.nodes_before, record.nodes_after, seconds
        )
        records.append(record)
        if after_each is not None:
            after_each(name, ir.serde.serialize_model(ir_model))
    return ir.serde.serialize_model(ir_model), records
