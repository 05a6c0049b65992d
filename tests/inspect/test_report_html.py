"""The HTML conversion report: its content against the JSON twin, its error histograms against
numpy, its failure pages, and its rendering in a real headless Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from pipeline.errors import ExportError
from pipeline.inspecting import render_report_html
from pipeline.inspecting.summary import categorize, summarize
from pipeline.parity import HIST_LOG10_EDGES, compare_arrays
from tests.inspect.browser import png_pixels

SECTIONS = ("stages", "histograms", "nodes", "parity", "warnings", "json")
SCREENSHOT = Path("/tmp/n8_report_screenshot.png")


def test_error_histogram_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    expected = rng.standard_normal(1000).astype(np.float32)
    actual = expected + (rng.standard_normal(1000) * 10.0 ** rng.uniform(-9, -2, 1000)).astype(np.float32)
    actual[:7] = expected[:7]
    actual[7] = np.nan
    row = compare_arrays("y", actual, expected, atol=1e-5, rtol=1e-4)
    hist = row.histogram
    assert hist is not None
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    finite = diff[np.isfinite(diff)]
    want, _ = np.histogram(np.log10(finite[finite > 0]), bins=np.asarray(HIST_LOG10_EDGES))
    assert hist["abs"]["counts"] == want.tolist()
    assert hist["abs"]["zeros"] == int(np.count_nonzero(finite == 0)) >= 7
    assert hist["abs"]["nonfinite"] == 1
    ratio = finite / (1e-5 + 1e-4 * np.abs(expected[np.isfinite(diff)].astype(np.float64)))
    beyond = int(np.count_nonzero(ratio > 1))
    edges = np.asarray(HIST_LOG10_EDGES)
    counts = np.asarray(hist["ratio"]["counts"])
    # every element past tolerance falls in a bin starting at or above log10(1) = 0, plus "over"
    assert int(counts[edges[:-1] >= 0].sum()) + hist["ratio"]["over"] == beyond
    assert row.mismatches == beyond + 1  # the NaN is a mismatch too


def test_report_matches_its_json_twin(converted: dict[str, Any]) -> None:
    page = converted["html"].read_text()
    report = converted["report"]
    for section in SECTIONS:
        assert f"id='{section}'" in page, section
    for node in report["lower"]["nodes"]:
        assert f"<code>{node['node']}</code>" in page
        assert node["source"] and node["source"] in page
    embedded = re.search(r"<script type='application/json' id='report-data'>(.*?)</script>", page, re.DOTALL)
    assert embedded is not None
    assert json.loads(embedded.group(1).replace("<\\/", "</")) == report
    outputs = [o for key in ("export", "lower") for o in report[key]["parity"]["outputs"]]
    outputs += report["end_to_end_parity"]["outputs"]
    differing = [o for o in outputs if o["max_abs"] > 0]
    assert page.count("<figure class='plot'") == len(differing) >= 2
    assert page.count("elements identical, no error to plot") == len(outputs) - len(differing)
    assert "id='status'>passed<" in page


def test_report_is_self_contained(converted: dict[str, Any]) -> None:
    page = converted["html"].read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert not re.search(r"url\((?!#)", page) and "@import" not in page and "<link" not in page


def test_views_of_each_stage(converted: dict[str, Any]) -> None:
    report = converted["report"]
    export_view, lower_view, both = summarize(report["export"]), summarize(report["lower"]), summarize(report)
    assert [s.name for s in export_view.stages] == [s["name"] for s in report["export"]["stages"]]
    assert [s.name for s in lower_view.stages] == list(report["lower"]["timings"])
    assert len(both.stages) == len(export_view.stages) + len(lower_view.stages)
    assert len(both.parities) == 3 and both.status == "passed"
    mil = next(h for h in lower_view.histograms if h.columns == ["MIL"])
    assert {op: c[0] for op, c in mil.rows} == report["lower"]["mil_ops"]


def test_warning_categories() -> None:
    assert categorize("Slice/ends: 1 int64 value(s) outside int32 saturated to int32") == "int64 saturation"
    assert categorize("target raised from iOS15 to iOS17: the model uses gather_nd") == "target raised"
    assert categorize("exporter fell back from dynamo to torchscript: boom") == "fallback"
    page = render_report_html({"target": "iOS17", "backend": "mlprogram", "precision": "fp32",
                               "timings": {"build_mil": 0.1}, "onnx_ops": {"Slice": 1},
                               "mil_ops": {"slice_by_index": 1}, "warnings": [
                                   "target raised from iOS15 to iOS17: x",
                                   ("Slice/ends: 2 int64 value(s) outside int32 saturated")], "nodes": [
                                   {"node": "n", "op_type": "Foo", "domain": "com.x", "kind": "custom_layer",
                                    "mil_ops": ["Foo"], "outputs": ["y"], "source": None}], "parity": None})
    for text in ("int64 saturation", "target raised", "fallback", "custom layers", "unverified"):
        assert text in page, text


def test_failed_export_still_writes_the_page(tmp_path: Path) -> None:
    from pipeline.api import export

    class Broken(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ValueError("no good")

    with pytest.raises(ExportError):
        export(Broken(), (torch.zeros(2),), report_html=tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert "id='status'>failed<" in page and "no good" in page


def test_browser_renders_sections_and_plots(converted: dict[str, Any], browser: Any) -> None:
    browser.open(converted["html"].resolve().as_uri())
    browser.wait_for("document.readyState === 'complete' && document.querySelector('figure[data-rendered]') !== null")
    heights = browser.evaluate(
        "[" + ",".join(f"document.getElementById('{s}').getBoundingClientRect().height" for s in SECTIONS) + "]")
    assert all(h > 40 for h in heights), dict(zip(SECTIONS, heights))
    sizes = browser.evaluate("Array.from(document.querySelectorAll('figure.plot')).map("
                             "function (f) { return f.getAttribute('data-rendered'); })")
    assert sizes and all(int(s.split("x")[0]) > 300 and int(s.split("x")[1]) > 80 for s in sizes), sizes
    rows = browser.evaluate("document.querySelectorAll('#node-table tbody tr').length")
    assert rows == len(converted["report"]["lower"]["nodes"])
    browser.screenshot(SCREENSHOT, full_page=True)
    pixels = png_pixels(SCREENSHOT)
    assert pixels.shape[0] > 1500 and pixels.std() > 20  # a long page, not a blank one
    # the plots drew coloured bars: some pixels are the pass colour (#2f9e6e)
    green = np.all(np.abs(pixels.astype(int) - [0x2F, 0x9E, 0x6E]) < 12, axis=-1)
    assert green.sum() > 200
