"""``convert`` runs onnx's checker once: stage one checks, stage two trusts that result."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import onnx
import pytest

import pipeline
from models import maximum
from pipeline.errors import ValidationError
from pipeline.lowering import load


def _refusing_checker(proto: Any) -> None:
    raise ValidationError("lower: the checker ran")


def test_convert_checks_in_stage_one_only(monkeypatch: pytest.MonkeyPatch) -> None:
    model, examples = maximum.build()
    monkeypatch.setattr(load, "_check", _refusing_checker)
    result = pipeline.convert(model, examples)
    assert result.parity is not None and result.parity.ok
    with pytest.raises(ValidationError, match="the checker ran"):  # a plain lower still checks
        pipeline.lower(result.export.onnx_model)


def test_convert_records_the_written_files_hash(tmp_path: Path) -> None:
    """The Core ML metadata names the ONNX file convert wrote, hashed as written."""
    model, examples = maximum.build()
    onnx_path = tmp_path / "maximum.onnx"
    result = pipeline.convert(model, examples, onnx_path=onnx_path)
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    assert result.export.sha256 == digest
    user = result.lowered.mlmodel.get_spec().description.metadata.userDefined
    assert user["pipeline.source_sha256"] == digest
    assert onnx.load(onnx_path) == result.export.onnx_model  # the file holds the checked model
