"""Flatten / unflatten reshapes around linear chains go: ORT vs lower + execute, fewer ops."""

from __future__ import annotations

import numpy as np
from onnx import helper

from pipeline.lowering.cleanup_linear import unflatten_linear_chains
from tests.lowering.cleanup_graphs import counts_with_and_without, graph
from tests.lowering.support import rand

N = helper.make_node


def _mlp(out_shape: list[int]) -> tuple[list, dict, dict]:
    nodes = [
        N("Relu", ["x"], ["r"]),
        N("Reshape", ["r", "flat"], ["f"]),
        N("Gemm", ["f", "w1", "b1"], ["h"], transB=1),
        N("Relu", ["h"], ["a"]),
        N("Gemm", ["a", "w2", "b2"], ["g"], transB=1),
        N("Reshape", ["g", "back"], ["out"]),
    ]
    inits = {"flat": np.array([10, 8], np.int64), "w1": rand(16, 8, seed=1), "b1": rand(16, seed=2),
             "w2": rand(4, 16, seed=3), "b2": rand(4, seed=4), "back": np.array(out_shape, np.int64)}
    return nodes, {"x": rand(2, 5, 8)}, inits


def test_reshapes_around_mlp_go(monkeypatch) -> None:
    nodes, feeds, inits = _mlp([2, 5, 4])
    model = graph(nodes, feeds, inits, ["out"])
    after, before = counts_with_and_without(monkeypatch, model, feeds, unflatten_linear_chains)
    assert before["reshape"] == 2 and after["reshape"] == 0
    assert after["linear"] == 2 and after["relu"] == 2


def test_other_leading_shape_keeps_reshapes(monkeypatch) -> None:
    # The rows come back as (5, 2, 4): not the input's leading axes, so not a row-wise chain.
    nodes, feeds, inits = _mlp([5, 2, 4])
    model = graph(nodes, feeds, inits, ["out"])
    after, before = counts_with_and_without(monkeypatch, model, feeds, unflatten_linear_chains)
    assert after == before and after["reshape"] == 2
