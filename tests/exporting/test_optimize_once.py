"""One round of onnxscript's optimizer gives the same final graphs as torch's two rounds."""

from __future__ import annotations

import collections

import pytest

import pipeline
from models import face_seg, transformer_block
from pipeline.exporting import exporters

MODELS = {"transformer_block": transformer_block, "face_seg": face_seg}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_once_matches_torchs_default(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert exporters.DYNAMO_OPTIMIZE == "once"  # the default under test
    model, args = MODELS[name].build()
    graphs = {}
    for setting in (True, "once"):
        monkeypatch.setattr(exporters, "DYNAMO_OPTIMIZE", setting)
        result = pipeline.export(model, args)
        assert result.exporter_used == "dynamo" and result.ok
        graphs[setting] = collections.Counter(n.op_type for n in result.onnx_model.graph.node)
    assert graphs["once"] == graphs[True]
