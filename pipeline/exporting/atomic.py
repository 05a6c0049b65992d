"""Atomic file writes: write beside the target, fsync, then ``os.replace``; a failure leaves no
partial file (the old one, if any, stays intact)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import onnx


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; creates the parent directory."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def save_model(model: onnx.ModelProto, path: str | Path) -> Path:
    """Serialize an ONNX model (< 2 GB, single file) atomically."""
    return write_bytes(path, model.SerializeToString())


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically."""
    return write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode())
