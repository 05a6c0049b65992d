"""Slices tiling one axis become one split: ORT vs lower + execute, fewer ops."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from pipeline.lowering.cleanup_split import split_tiling_slices
from tests.lowering.cleanup_graphs import counts_with_and_without, graph
from tests.lowering.support import rand

N = helper.make_node


def _slices(bounds: list[tuple[int, int]], axis: int) -> tuple[list, dict, list[str]]:
    nodes, inits, outs = [N("Relu", ["x"], ["r"])], {"axes": np.array([axis], np.int64)}, []
    for i, (start, stop) in enumerate(bounds):
        inits[f"s{i}"], inits[f"e{i}"] = np.array([start], np.int64), np.array([stop], np.int64)
        nodes.append(N("Slice", ["r", f"s{i}", f"e{i}", "axes"], [f"p{i}"]))
        nodes.append(N("Neg", [f"p{i}"], [f"o{i}"]))
        outs.append(f"o{i}")
    return nodes, inits, outs


@pytest.mark.parametrize(("bounds", "axis"), [
    ([(0, 1), (1, 2), (2, 3)], 1),  # unbind
    ([(2, 5), (0, 2)], -1),  # chunks, written out of order
    ([(0, 1), (1, 2), (2, 9_999)], 1),  # end past the axis, as ONNX allows
])
def test_tiling_slices_become_split(monkeypatch, bounds: list[tuple[int, int]], axis: int) -> None:
    nodes, inits, outs = _slices(bounds, axis)
    feeds = {"x": rand(2, 3, 5)}
    model = graph(nodes, feeds, inits, outs)
    after, before = counts_with_and_without(monkeypatch, model, feeds, split_tiling_slices)
    assert before["slice_by_index"] == len(bounds)
    assert after["slice_by_index"] == 0 and after["split"] == 1


@pytest.mark.parametrize("bounds", [[(0, 1), (2, 3)], [(0, 2), (1, 3)]], ids=["gap", "overlap"])
def test_slices_not_tiling_are_kept(monkeypatch, bounds: list[tuple[int, int]]) -> None:
    nodes, inits, outs = _slices(bounds, 1)
    feeds = {"x": rand(2, 3, 5)}
    model = graph(nodes, feeds, inits, outs)
    after, before = counts_with_and_without(monkeypatch, model, feeds, split_tiling_slices)
    assert after == before and after["split"] == 0
