"""concat of unsqueezed values becomes one stack: ORT vs lower + execute, fewer ops."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from pipeline.lowering.cleanup_stack import stack_expanded_concats
from tests.lowering.cleanup_graphs import counts_with_and_without, graph
from tests.lowering.support import rand

N = helper.make_node


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_unsqueeze_concat_becomes_stack(monkeypatch, axis: int) -> None:
    nodes = [N("Relu", [n], [f"r{n}"]) for n in "abc"]
    nodes += [N("Unsqueeze", [f"r{n}", "axes"], [f"u{n}"]) for n in "abc"]
    nodes.append(N("Concat", ["ua", "ub", "uc"], ["out"], axis=axis))
    feeds = {n: rand(2, 4, seed=i) for i, n in enumerate("abc")}
    model = graph(nodes, feeds, {"axes": np.array([axis], np.int64)}, ["out"], opset=13)
    after, before = counts_with_and_without(monkeypatch, model, feeds, stack_expanded_concats)
    assert before["concat"] == 1 and before["expand_dims"] == 3
    assert after["stack"] == 1 and after["concat"] == 0 and after["expand_dims"] == 0


def test_concat_on_another_axis_is_kept(monkeypatch) -> None:
    # Unsqueeze on axis 0 but concat on axis 1: not a stack.
    nodes = [N("Relu", [n], [f"r{n}"]) for n in "ab"]
    nodes += [N("Unsqueeze", [f"r{n}", "axes"], [f"u{n}"]) for n in "ab"]
    nodes.append(N("Concat", ["ua", "ub"], ["out"], axis=1))
    feeds = {n: rand(2, 4, seed=i) for i, n in enumerate("ab")}
    model = graph(nodes, feeds, {"axes": np.array([0], np.int64)}, ["out"], opset=13)
    after, before = counts_with_and_without(monkeypatch, model, feeds, stack_expanded_concats)
    assert after == before and after["stack"] == 0


def test_expanded_value_used_elsewhere_is_kept(monkeypatch) -> None:
    nodes = [N("Relu", [n], [f"r{n}"]) for n in "ab"]
    nodes += [N("Unsqueeze", [f"r{n}", "axes"], [f"u{n}"]) for n in "ab"]
    nodes += [N("Concat", ["ua", "ub"], ["out"], axis=0), N("Neg", ["ua"], ["other"])]
    feeds = {n: rand(2, 4, seed=i) for i, n in enumerate("ab")}
    model = graph(nodes, feeds, {"axes": np.array([0], np.int64)}, ["out", "other"], opset=13)
    after, before = counts_with_and_without(monkeypatch, model, feeds, stack_expanded_concats)
    assert after == before
