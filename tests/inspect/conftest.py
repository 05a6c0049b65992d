"""One real conversion of models/small_cnn shared by the inspection tests (it takes ~15 s)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.inspect.browser import Browser, find_chromium


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """models.small_cnn through convert(): paths of the intermediates, JSON and HTML reports."""
    from models.small_cnn import build
    from pipeline.api import convert

    root = tmp_path_factory.mktemp("small_cnn")
    module, examples = build()
    result = convert(
        module, examples, root / "small_cnn.mlpackage",
        export_keep_intermediates=root / "steps", export_source="models.small_cnn:build",
        report_path=root / "report.json", report_html=root / "report.html",
    )
    return {"root": root, "steps": root / "steps", "json": root / "report.json",
            "html": root / "report.html", "report": json.loads((root / "report.json").read_text()),
            "result": result}


@pytest.fixture(scope="session")
def browser() -> Any:
    """A headless Chromium, or a skip saying why there is none."""
    exe = find_chromium()
    if exe is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium); .ci/run installs it")
    with Browser(exe) as b:
        yield b
