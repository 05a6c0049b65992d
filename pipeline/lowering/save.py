"""Atomic saving of Core ML models: nothing partial is left behind after a failure."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pipeline.errors import LoweringError


def save_atomically(mlmodel: Any, path: Path, backend: str) -> Path:
    """Save ``mlmodel`` to ``path`` (.mlpackage folder or .mlmodel file) atomically.

    The model is written into a temporary sibling and renamed into place only once complete.
    """
    suffix = ".mlpackage" if backend == "mlprogram" else ".mlmodel"
    if path.suffix not in (".mlpackage", ".mlmodel"):
        path = path.with_suffix(suffix)
    if path.suffix != suffix:
        raise LoweringError(f"lower: the {backend} backend saves {suffix} files, not {path.suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        staged = tmpdir / path.name
        mlmodel.save(str(staged))
        if path.exists():
            old = tmpdir / (path.name + ".old")
            os.replace(path, old)
        os.replace(staged, path)
    except Exception as exc:
        raise LoweringError(f"lower: could not save {path}: {exc}") from exc
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return path
