"""Attention clean-ups (scale folding, NaN guard, K^T layout ladder): ORT vs lower + execute,
with fewer ops than without the pass."""

from __future__ import annotations

import numpy as np
from onnx import helper

from pipeline.lowering.cleanup import collapse_layout_chains
from pipeline.lowering.cleanup_attention import drop_softmax_nan_guards, fold_matmul_scales
from tests.lowering.cleanup_graphs import counts_with_and_without, graph
from tests.lowering.support import rand

N = helper.make_node


def _sdpa(mask: bool) -> tuple[list, dict, dict]:
    """torch's exported SDPA: both operands scaled by sqrt(scale), isnan guard after softmax."""
    s = np.float32(8 ** -0.25)
    nodes = [
        N("Mul", ["q", "s"], ["qs"]),
        N("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        N("Mul", ["kt", "s"], ["ks"]),
        N("MatMul", ["qs", "ks"], ["scores"]),
    ]
    feeds = {"q": rand(1, 2, 5, 8), "k": rand(1, 2, 5, 8, seed=1), "v": rand(1, 2, 5, 8, seed=2)}
    if mask:
        m = np.zeros((1, 1, 5, 5), np.float32)
        m[..., 2, :] = -np.inf  # one row masked entirely: softmax gives NaN, the guard gives 0
        m[..., 3, 1:] = -np.inf
        nodes.append(N("Add", ["scores", "mask"], ["masked"]))
        feeds["mask"] = m
    nodes += [
        N("Softmax", ["masked" if mask else "scores"], ["p"], axis=-1),
        N("IsNaN", ["p"], ["nan"]),
        N("Where", ["nan", "zero", "p"], ["pg"]),
        N("MatMul", ["pg", "v"], ["out"]),
    ]
    return nodes, feeds, {"s": s, "zero": np.float32(0)}


def test_two_scales_fold_into_one(monkeypatch) -> None:
    nodes, feeds, inits = _sdpa(mask=False)
    model = graph(nodes, feeds, inits, ["out"])
    after, before = counts_with_and_without(monkeypatch, model, feeds, fold_matmul_scales)
    assert before["mul"] == 2 and after["mul"] == 1


def test_guard_after_unmasked_softmax_is_dropped(monkeypatch) -> None:
    nodes, feeds, inits = _sdpa(mask=False)
    model = graph(nodes, feeds, inits, ["out"])
    after, before = counts_with_and_without(monkeypatch, model, feeds, drop_softmax_nan_guards)
    assert before["select"] == 1 and before["not_equal"] == 1
    assert after["select"] == 0 and after["not_equal"] == 0
    assert sum(after.values()) == sum(before.values()) - 2


def test_guard_after_masked_softmax_is_kept(monkeypatch) -> None:
    # A row masked with -inf everywhere: onnxruntime gives 0 there, so must we.
    nodes, feeds, inits = _sdpa(mask=True)
    model = graph(nodes, feeds, inits, ["out"])
    after, before = counts_with_and_without(monkeypatch, model, feeds, drop_softmax_nan_guards)
    assert after == before and after["select"] == 1


def test_key_transpose_ladder_becomes_reshape_and_transpose(monkeypatch) -> None:
    # (1, S, H*D) -> (1, S, H, D) -> (1, H, S, D) -> (H, S, D) -> (H, D, S) -> (1, H, D, S)
    nodes = [
        N("Relu", ["x"], ["r"]),
        N("Reshape", ["r", "s1"], ["a"]),
        N("Transpose", ["a"], ["b"], perm=[0, 2, 1, 3]),
        N("Reshape", ["b", "s2"], ["c"]),
        N("Transpose", ["c"], ["d"], perm=[0, 2, 1]),
        N("Reshape", ["d", "s3"], ["e"]),
        N("MatMul", ["q", "e"], ["out"]),
    ]
    feeds = {"x": rand(1, 6, 12), "q": rand(1, 3, 6, 4, seed=3)}
    inits = {"s1": np.array([1, 6, 3, 4], np.int64), "s2": np.array([3, 6, 4], np.int64),
             "s3": np.array([1, 3, 4, 6], np.int64)}
    model = graph(nodes, feeds, inits, ["out"])
    after, before = counts_with_and_without(monkeypatch, model, feeds, collapse_layout_chains)
    assert before["reshape"] + before["transpose"] == 5
    assert after["reshape"] == 1 and after["transpose"] == 1
