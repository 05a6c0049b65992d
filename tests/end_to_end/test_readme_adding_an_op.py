"""The README's 'Adding an op' code blocks run as written, in order, as one script.

They go through a file (not ``exec`` of a string) because ``onnxscript.script`` reads its
function's source."""

from __future__ import annotations

import runpy
from pathlib import Path

from tests.readme import python_blocks


def test_adding_an_op_blocks_run(tmp_path: Path) -> None:
    blocks = python_blocks("Adding an op")
    assert len(blocks) >= 4
    script = tmp_path / "adding_an_op.py"
    script.write_text("\n\n".join(blocks))
    runpy.run_path(str(script), run_name="readme_adding_an_op")
