"""Access to the README's code examples, so tests run exactly what users read."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(section: str) -> list[str]:
    """The ```python blocks of the README section whose heading starts with ``section``."""
    text = README.read_text()
    start = text.find(f"## {section}")
    assert start >= 0, f"README.md has no section '## {section}'"
    end = text.find("\n## ", start + 4)
    body = text[start: end if end > 0 else None]
    return re.findall(r"```python\n(.*?)```", body, flags=re.DOTALL)
