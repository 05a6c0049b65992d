"""Atomic writes and the JSON report's statistics."""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from pipeline.exporting import atomic, report


def test_atomic_write_replaces_and_leaves_nothing_on_failure(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "sub" / "m.onnx"
    atomic.write_bytes(target, b"old")
    assert target.read_bytes() == b"old"

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic.write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["m.onnx"]


def test_json_roundtrip(tmp_path: Path) -> None:
    path = atomic.write_json(tmp_path / "r.json", {"a": [1, 2], "p": Path("x")})
    assert json.loads(path.read_text()) == {"a": [1, 2], "p": "x"}


def test_op_histogram_and_stats() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Relu", ["a"], ["b"]),
        helper.make_node("Neg", ["b"], ["c"]),
        helper.make_node("Custom", ["c"], ["y"], domain="my.domain"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                    helper.make_opsetid("my.domain", 1)])
    assert report.op_histogram(model) == {"Relu": 2, "Neg": 1, "my.domain::Custom": 1}
    stats = report.graph_stats(model)
    assert stats["nodes"] == 4 and stats["opsets"] == {"ai.onnx": 18, "my.domain": 1}


def test_recorder_times_stages_even_on_failure() -> None:
    seen: list[str] = []
    rec = report.Recorder(seen.append)
    with rec.stage("one") as entry:
        entry["extra"] = 1
    with pytest.raises(ValueError), rec.stage("two"):
        raise ValueError("x")
    assert seen == ["one", "two"]
    one, two = rec.data["stages"]
    assert one["extra"] == 1 and one["seconds"] >= 0 and two["failed"] is True
    rec.graph("g", onnx.ModelProto())
    assert rec.data["graphs"]["g"]["nodes"] == 0
