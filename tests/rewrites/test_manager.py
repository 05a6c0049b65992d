"""The pass manager: order, select, disable, unknown names, after_each, records, no mutation,
and the README example of a user pass."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import rewrites
from pipeline.errors import RewriteError
from tests.readme import python_blocks
from tests.rewrites.support import const, make_model, op_types, ort_run, tol

F = TensorProto.FLOAT


def _model() -> onnx.ModelProto:
    nodes = [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Exp", ["a"], ["e"]),
             helper.make_node("ReduceSum", ["e", "ax"], ["s"], keepdims=1),
             helper.make_node("Div", ["e", "s"], ["y"]), helper.make_node("Neg", ["x"], ["dead"])]
    return make_model([const("ax", [-1], np.int64), *nodes], [("x", F, [2, 5])], ["y"], opset=17)


def test_default_order_and_listing() -> None:
    names = [n for n, _, _ in rewrites.list_passes()]
    assert names[: len(rewrites.DEFAULT_ORDER)] == list(rewrites.DEFAULT_ORDER)
    assert all(desc and on for n, desc, on in rewrites.list_passes() if n in rewrites.DEFAULT_ORDER)


def test_run_all_records_and_parity() -> None:
    model = _model()
    text = onnx.printer.to_text(model.graph)
    after, records = rewrites.run_passes(model)
    assert [r.name for r in records] == list(rewrites.DEFAULT_ORDER)
    assert op_types(after) == ["Softmax"]
    assert onnx.printer.to_text(model.graph) == text  # input untouched
    assert records[0].nodes_before == 6 and records[-1].nodes_after == 1
    assert records[0].op_histogram_before["Identity"] == 1
    assert all(r.changed == (r.op_histogram_before != r.op_histogram_after) or r.changed
               for r in records)
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32)}
    atol, rtol = tol("fusion")
    np.testing.assert_allclose(ort_run(after, feeds)[0], ort_run(model, feeds)[0], atol=atol,
                               rtol=rtol)


def test_select_runs_in_default_order_and_disable() -> None:
    _, records = rewrites.run_passes(_model(), select=["remove_dead_code", "remove_identity"])
    assert [r.name for r in records] == ["remove_identity", "remove_dead_code"]
    _, records = rewrites.run_passes(_model(), disable=["fuse_softmax"])
    assert "fuse_softmax" not in [r.name for r in records]


def test_unknown_names_raise() -> None:
    with pytest.raises(RewriteError, match="fuse_gelu"):
        rewrites.run_passes(_model(), select=["fuse_nothing"])
    with pytest.raises(RewriteError, match="unknown"):
        rewrites.run_passes(_model(), disable=["nope"])


def test_after_each_sees_each_intermediate() -> None:
    seen: list[tuple[str, list[str]]] = []
    rewrites.run_passes(_model(), after_each=lambda n, m: seen.append((n, op_types(m))))
    assert [n for n, _ in seen] == list(rewrites.DEFAULT_ORDER)
    assert "Identity" not in seen[0][1] and "Softmax" in dict(seen)["fuse_softmax"]


def test_readme_example_registers_a_user_pass() -> None:
    (code,) = python_blocks("Graph rewrites")
    try:
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102 (runs the README)
        order = rewrites.pass_order()
        assert order[order.index("fuse_silu") + 1] == "fuse_hardswish"
        nodes = [helper.make_node("HardSigmoid", ["x"], ["h"], alpha=1 / 6, beta=0.5),
                 helper.make_node("Mul", ["x", "h"], ["y"])]
        model = make_model(nodes, [("x", F, [3, 4])], ["y"], opset=14)
        after, records = rewrites.run_passes(model)
        assert "fuse_hardswish" in [r.name for r in records]
        assert op_types(after) == ["HardSwish"]
        feeds = {"x": np.linspace(-4, 4, 12, dtype=np.float32).reshape(3, 4)}
        atol, rtol = tol("fusion")
        np.testing.assert_allclose(ort_run(after, feeds)[0], ort_run(model, feeds)[0],
                                   atol=atol, rtol=rtol)
    finally:
        rewrites.PASSES.remove("fuse_hardswish")
