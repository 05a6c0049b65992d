"""``python -m pipeline.inspect`` and the ``--report-html`` / ``--keep-intermediates`` flags of
export and lower: main(argv) paths, one-line errors, one subprocess smoke (Ctrl-C stops)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli.inspect import main

ROOT = Path(__file__).resolve().parents[2]
FACTORY = "tests.exporting.support:tiny"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """export then lower through their CLIs, keeping intermediates and both reports."""
    from pipeline.cli.export import main as export_main
    from pipeline.cli.lower import main as lower_main

    root = tmp_path_factory.mktemp("flow")
    steps = root / "steps"
    assert export_main([FACTORY, "--out", str(root / "t.onnx"), "--keep-intermediates", str(steps),
                        "--report", str(root / "e.json"), "--report-html", str(root / "e.html"), "-q"]) == 0
    assert lower_main([str(root / "t.onnx"), "-o", str(root / "t.mlpackage"), "--keep-intermediates",
                       str(steps), "--report", str(root / "l.json"), "--report-html", str(root / "l.html"),
                       "-q"]) == 0
    return {"root": root, "steps": steps}


def test_export_and_lower_write_pages(flow: dict[str, Path]) -> None:
    root = flow["root"]
    export_page, lower_page = (root / "e.html").read_text(), (root / "l.html").read_text()
    assert "PyTorch → ONNX" in export_page and "id='status'>passed<" in export_page
    lowered = json.loads((root / "l.json").read_text())
    for node in lowered["nodes"]:
        assert f"<code>{node['node']}</code>" in lower_page
    assert (flow["steps"] / "04_lowered.mlpackage" / "Manifest.json").exists()


def test_html_from_json(flow: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = flow["root"] / "again.html"
    assert main([str(flow["root"] / "l.json"), "--html", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert "id='nodes'" in out.read_text()


@pytest.mark.parametrize("argv, code, phrase", [
    (["{steps}"], 2, "--stage"),
    (["{steps}", "--stage", "nope"], 2, "invalid choice"),
    (["{root}/missing.onnx"], 2, "does not exist"),
    (["{root}/l.json"], 2, "--html"),
])
def test_errors_are_one_line(flow: dict[str, Path], capsys: pytest.CaptureFixture[str],
                             argv: list[str], code: int, phrase: str) -> None:
    args = [a.format(steps=flow["steps"], root=flow["root"]) for a in argv]
    assert main(args) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and phrase in err[0] and "Traceback" not in err[0]


def test_serves_the_stage_until_stopped(flow: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    import netron

    port = _free_port()
    codes: list[Any] = []
    thread = threading.Thread(target=lambda: codes.append(main(
        [str(flow["steps"]), "--stage", "rewritten", "--port", str(port), "--no-browser"])))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not netron.status(("127.0.0.1", port)) and time.monotonic() < deadline:
            time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/02_rewritten.onnx", timeout=10) as reply:
            assert reply.read() == (flow["steps"] / "02_rewritten.onnx").read_bytes()
    finally:
        netron.stop(("127.0.0.1", port))
        thread.join(20)
    assert codes == [0]
    assert f"http://127.0.0.1:{port}" in capsys.readouterr().out


def test_subprocess_ctrl_c_stops(flow: dict[str, Path]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.inspect", str(flow["steps"] / "03_simplified.onnx"),
         "--no-browser", "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "http://127.0.0.1:" in line, line
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
