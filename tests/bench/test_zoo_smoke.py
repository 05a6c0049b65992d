"""Smoke test of ``bench/zoo.py`` on a two-model subset, and its summary arithmetic.

The zoo run is in-process (no subprocess per path) to stay well under a minute; the full,
isolated run is ``python bench/zoo.py``.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import zoo  # bench/ is not a package: imported from the path set above
import zoo_report

SUBSET = ("maximum", "small_cnn")


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("zoo")
    assert zoo.main(["--models", ",".join(SUBSET), "--in-process", "--out", str(out)]) == 0
    return out


def test_outputs_written(zoo_run: Path) -> None:
    table = (zoo_run / "zoo.md").read_text()
    for name in SUBSET:
        assert f"| {name} |" in table
    assert "## Summary" in table
    for png in ("zoo_time.png", "zoo_ops.png"):
        assert (zoo_run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ours_converts_and_verifies_both(zoo_run: Path) -> None:
    rows = json.loads((zoo_run / "zoo.json").read_text())["rows"]
    assert [r["model"] for r in rows] == list(SUBSET)
    for row in rows:
        ours = row["ours"]
        assert "error" not in ours, ours.get("error")
        # Verified against PyTorch's own outputs by the run: an independent reference.
        assert ours["ok"] and ours["reference"] == "pytorch"
        assert ours["ops"] >= 1 and ours["convert_s"] > 0
    # small_cnn is conv, relu, max-pool, flatten, linear: a one-op program would be wrong.
    assert rows[1]["ours"]["ops"] >= 4


def _cell(ops: int, seconds: float, ok: bool = True) -> dict[str, Any]:
    return {"ok": ok, "ops": ops, "convert_s": seconds, "stage2_s": seconds / 2}


def test_summary_counts_ratios_and_op_excess() -> None:
    rows = [
        {"model": "a", "ours": _cell(10, 2.0), "apple": _cell(12, 4.0), "onnxsim": _cell(9, 1.0)},
        {"model": "b", "ours": _cell(5, 3.0), "apple": _cell(5, 1.0), "onnxsim": {"error": "x"}},
        {"model": "c", "ours": {"error": "LoweringError: node 'n'"}, "apple": _cell(7, 1.0, False),
         "onnxsim": _cell(3, 1.0)},
    ]
    lines = zoo_report.summary(rows)
    assert lines[0] == "ours: converted 2/3, verified 2/3"
    assert lines[1] == "coremltools frontend: converted 3/3, verified 2/3"
    assert lines[2] == "onnxsim export_coreml: converted 2/3, verified 2/3"
    expected_apple = statistics.median([2.0 / 4.0, 3.0 / 1.0])
    assert f"{expected_apple:.2f}x over 2 models" in lines[3]
    assert "2.00x over 1 models" in lines[4]  # only model a: ours 1.0 / onnxsim 0.5
    assert "a (ours 10 > onnxsim 9)" in lines[5] and "b (" not in lines[5]
    assert lines[6].endswith("converts but ours does not: c")  # ours fails c, both peers convert
    assert lines[7].endswith("verifies but ours does not: c")  # onnxsim verifies c
    assert lines[8].startswith("ours does not verify 1 model(s)")
    assert zoo_report.status(rows[2]["apple"]) == "parity"


def test_summary_reports_the_torchscript_path_when_measured() -> None:
    rows = [
        {"model": "a", "ours": _cell(10, 2.0), "ours_ts": _cell(10, 0.5), "apple": _cell(12, 4.0),
         "onnxsim": _cell(9, 1.0)},
        {"model": "b", "ours": _cell(5, 3.0), "ours_ts": {"error": "RuntimeError: x"},
         "apple": _cell(5, 1.0), "onnxsim": _cell(5, 1.0)},
    ]
    lines = zoo_report.summary(rows)
    assert lines[1] == "ours, --exporter torchscript: converted 1/2, verified 1/2"
    ts = next(line for line in lines if "--exporter torchscript/coremltools" in line)
    assert "0.12x over 1 models" in ts  # only model a: 0.5 / 4.0
    assert "ours, TorchScript exporter" in zoo_report.table(rows)
