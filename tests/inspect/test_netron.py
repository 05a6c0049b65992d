"""Netron on our intermediates, loaded in a real headless Chromium; and what Netron reads from
the intermediates (node names, source lines, custom-domain attributes, MIL value names)."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from typing import Any

import onnx
import pytest
from onnx import helper

from pipeline.errors import InputSpecError, ModelLoadError
from pipeline.inspecting import netron

# Netron asks for cookie consent (and nags about updates 180 days after its build) in a modal that
# waits for a click before it loads the model; a test browser answers both before the page runs.
NETRON_INIT = """
document.cookie = 'consent=' + Date.now() + '; path=/';
new MutationObserver(function () {
  var m = document.querySelector('meta[name="date"]');
  if (m) m.setAttribute('content', new Date().toISOString().slice(0, 19).replace('T', ' '));
}).observe(document, {childList: true, subtree: true});
"""
IDS = "Array.from(document.querySelectorAll('[id^=\"{prefix}\"]')).map(function (e) {{ return e.id; }})"


def _render(browser: Any, model: Path, prefix: str) -> list[str]:
    """Serve ``model`` with Netron, load it, and return the ids of the rendered SVG elements."""
    url = netron.serve(model)
    try:
        browser.add_init_script(NETRON_INIT)
        browser.open(url)
        expr = IDS.format(prefix=prefix)
        return list(browser.wait_for(f"(function () {{ var a = {expr}; return a.length ? a : null; }})()", 20))
    finally:
        netron.stop(url)


def test_stage_files_resolve(converted: dict[str, Any]) -> None:
    steps = converted["steps"]
    assert netron.available_stages(steps) == ["exported", "rewritten", "simplified", "lowered"]
    assert netron.resolve(steps, "simplified") == steps / "03_simplified.onnx"
    assert netron.resolve(steps, "lowered") == steps / "04_lowered.mlpackage"
    assert netron.netron_file(steps / "04_lowered.mlpackage").name == "Manifest.json"
    with pytest.raises(InputSpecError, match="--stage"):
        netron.resolve(steps)
    with pytest.raises(InputSpecError, match="intermediates folder"):
        netron.resolve(steps / "00_exported.onnx", "exported")
    with pytest.raises(ModelLoadError, match="does not exist"):
        netron.resolve(steps / "nope.onnx")


def test_intermediates_carry_names_and_source_lines(converted: dict[str, Any]) -> None:
    """What Netron shows: unique node names, and each node's doc_string is its model.py line."""
    for name in ("00_exported.onnx", "02_rewritten.onnx", "03_simplified.onnx"):
        graph = onnx.load(converted["steps"] / name).graph
        names = [n.name for n in graph.node]
        assert all(names) and len(set(names)) == len(names), name
        for node in graph.node:
            assert re.fullmatch(r".*small_cnn\.py:\d+", node.doc_string), (name, node.name, node.doc_string)


def test_lowered_values_keep_onnx_tensor_names(converted: dict[str, Any]) -> None:
    onnx_outputs = {o for n in onnx.load(converted["steps"] / "03_simplified.onnx").graph.node for o in n.output}
    mil_text = (converted["steps"] / "04_lowered.mil.txt").read_text()
    mil_values = set(re.findall(r"^\s*%([A-Za-z0-9_]+):", mil_text, flags=re.MULTILINE))
    assert onnx_outputs <= mil_values, onnx_outputs - mil_values


def test_server_is_local_and_serves_the_model(converted: dict[str, Any]) -> None:
    model = converted["steps"] / "03_simplified.onnx"
    url = netron.serve(model)
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/data/{model.name}", timeout=10) as reply:
            assert reply.read() == model.read_bytes()
    finally:
        netron.stop(url)


def test_browser_renders_onnx_node_names(converted: dict[str, Any], browser: Any) -> None:
    model = converted["steps"] / "03_simplified.onnx"
    ids = _render(browser, model, "node-name-")
    expected = {f"node-name-{n.name}" for n in onnx.load(model).graph.node}
    assert expected <= set(ids), expected - set(ids)


def test_browser_renders_mlpackage_with_onnx_value_names(converted: dict[str, Any], browser: Any) -> None:
    """Netron draws one edge per MIL value, id ``edge-<name>``: the ONNX tensor names."""
    graph = onnx.load(converted["steps"] / "03_simplified.onnx").graph
    ids = _render(browser, converted["steps"] / "04_lowered.mlpackage", "edge-")
    expected = {f"edge-{o}" for n in graph.node for o in n.output} | {f"edge-{i.name}" for i in graph.input}
    assert expected <= set(ids), expected - set(ids)
    text = browser.evaluate("document.getElementById('target').textContent")
    assert "max_pool" in text and "MaxPool" not in text  # MIL ops, not the ONNX graph


def test_browser_shows_custom_domain_op_and_attributes(tmp_path: Path, browser: Any) -> None:
    node = helper.make_node("SigmoidTanh", ["x"], ["y"], name="act", domain="com.example",
                            alpha=0.25, mode="fast", doc_string="model.py:12")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                    helper.make_opsetid("com.example", 1)])
    onnx.save(model, tmp_path / "custom.onnx")
    url = netron.serve(tmp_path / "custom.onnx")
    try:
        browser.add_init_script(NETRON_INIT)
        browser.open(url)
        browser.wait_for("!!document.getElementById('node-name-act')", 20)
        assert "SigmoidTanh" in browser.evaluate("document.getElementById('node-name-act').textContent")
        # Clicking the node opens Netron's properties panel: domain, attributes, documentation.
        browser.evaluate("document.querySelector('#node-name-act .node-item-type')"
                         ".dispatchEvent(new MouseEvent('click', {bubbles: true}))")
        panel = browser.wait_for("(function () { var s = document.getElementById('sidebar');"
                                 " var t = s ? s.innerHTML : ''; return t.indexOf('ATTRIBUTES') >= 0 || t.indexOf('Attributes') >= 0 ? t : null; })()", 10)
    finally:
        netron.stop(url)
    for text in ('>com.example<', 'value="alpha"', '>0.25<', 'value="mode"', '>fast<', '>model.py:12<'):
        assert text in panel, (text, panel)
