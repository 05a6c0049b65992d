"""onnxscript's optimizer after the dynamo exporter, run lean.

torch's ``ONNXProgram.optimize`` runs ``onnxscript.optimizer.optimize_ir`` (two rounds of constant
folding and 46 default rewrite rules) and then onnxscript's fusions.  Here:

* one round instead of two: the second only repeats what our ``fold_constants`` pass and onnxsim
  do next (same final graphs and MIL op counts on the zoo's models);
* only the rewrite rules that can match: a rule whose pattern needs an op type the model does not
  hold anywhere (graph, subgraphs, functions) is left out.  The rewriter tries every rule at every
  node, so on a transformer most of its time went to the Conv/BatchNorm/Clip/Scatter rules.

A rule left out could only have fired on a node another rule created in the same round; every
rule preserves semantics, so that costs at most a missed simplification, which the later passes
(ours, onnxsim, coremltools') mostly make anyway.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any

log = logging.getLogger(__name__)


def model_op_types(model: Any) -> set[tuple[str, str]]:
    """(domain, op_type) of every node of an onnx_ir model: graph, subgraphs, functions."""
    import onnx_ir as ir

    graphs: list[Any] = [model.graph, *model.functions.values()]
    found = set()
    for graph in graphs:
        for node in ir.traversal.RecursiveGraphIterator(graph):
            found.add((node.domain or "", node.op_type))
    return found


def pattern_ops(rule: Any) -> set[tuple[str, str]] | None:
    """The (domain, op_type) pairs a rule's pattern needs, or None when it cannot be read."""
    pattern = getattr(rule, "_target_pattern", None)
    if pattern is None:
        return None
    needed = set()
    try:
        for node in pattern:
            ident = node.op_identifier()
            if ident is None or not isinstance(ident[1], str):
                return None  # a pattern node matching several ops: keep the rule
            needed.add((ident[0] or "", ident[1]))
    except (AttributeError, TypeError):
        return None
    return needed


def applicable(rules: Iterable[Any], present: set[tuple[str, str]]) -> list[Any]:
    """The rules whose patterns use only op types in ``present`` (unreadable ones kept)."""
    kept = []
    for rule in rules:
        needed = pattern_ops(rule)
        if needed is None or needed <= present:
            kept.append(rule)
    return kept


@contextlib.contextmanager
def _default_rules(rules: list[Any]) -> Iterator[None]:
    """While active, onnxscript's optimizer applies ``rules`` as its default rewrite rules."""
    from onnxscript import rewriter

    stock = rewriter._DEFAULT_REWRITE_RULES
    rewriter._DEFAULT_REWRITE_RULES = tuple(rules)
    try:
        yield
    finally:
        rewriter._DEFAULT_REWRITE_RULES = stock


def optimize_once(model: Any) -> None:
    """torch's ``ONNXProgram.optimize``: one round, with the rules that can match (in place)."""
    import onnxscript.optimizer
    import onnxscript.rewriter.onnx_fusions
    from onnxscript import rewriter

    stock = getattr(rewriter, "_DEFAULT_REWRITE_RULES", None)
    if stock is None:  # another onnxscript layout: its own rule set
        onnxscript.optimizer.optimize_ir(model, num_iterations=1)
    else:
        rules = applicable(stock, model_op_types(model))
        log.debug("onnxscript rewrite rules: %d of %d can match", len(rules), len(stock))
        with _default_rules(rules):
            onnxscript.optimizer.optimize_ir(model, num_iterations=1)
    onnxscript.rewriter.onnx_fusions.fuse(model)
