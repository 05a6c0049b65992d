"""torchvision ops: roi_pool, ps_roi_align, deform_conv2d vs onnxruntime."""

from __future__ import annotations

import pytest
import torch

from tests.symbolics._support import Case, check_fails_without, check_parity, op_types, params

torchvision = pytest.importorskip("torchvision")
ops = torchvision.ops

torch.manual_seed(0)
_X = torch.randn(2, 8, 10, 10)
# [batch, x1, y1, x2, y2]; rois of different sizes and batches, one reaching the border.
_ROIS = torch.tensor([[0, 1.0, 1.0, 7.0, 6.0], [1, 0.0, 2.5, 5.0, 9.0], [1, 3.0, 3.0, 9.5, 9.5]])

CASES = [
    Case("roi_pool", lambda x, r: ops.roi_pool(x, r, (3, 2), 0.75), (_X, _ROIS),
         fails=("dynamo",)),
    Case("ps_roi_align", lambda x, r: ops.ps_roi_align(x, r, (2, 2), 0.75, 2), (_X, _ROIS)),
    Case("ps_roi_align_adaptive", lambda x, r: ops.ps_roi_align(x, r, (2, 2), 0.5, -1),
         (_X, _ROIS)),
    # The raw op returns (output, channel_mapping); both are compared, the mapping exactly.
    Case("ps_roi_align_op", lambda x, r: torch.ops.torchvision.ps_roi_align(x, r, 0.5, 2, 2, 1),
         (_X, _ROIS)),
    Case("deform_conv2d", lambda x, o, w, b: ops.deform_conv2d(x, o, w, b, padding=1),
         (_X, torch.randn(2, 18, 10, 10), torch.randn(4, 8, 3, 3), torch.randn(4)),
         opset=19, fails=("legacy",)),
    Case("deform_conv2d_mask",
         lambda x, o, w, m: ops.deform_conv2d(x, o, w, stride=2, padding=1, mask=m),
         (_X, torch.randn(2, 36, 5, 5), torch.randn(4, 4, 3, 3), torch.rand(2, 18, 5, 5)),
         opset=19, fails=("legacy",)),
]


@pytest.mark.parametrize(("case", "exporter"), params(CASES, failing_only=True))
def test_fails_without_symbolic(case: Case, exporter: str) -> None:
    check_fails_without(case, exporter)


@pytest.mark.parametrize(("case", "exporter"), params(CASES))
def test_parity(case: Case, exporter: str) -> None:
    check_parity(case, exporter)


def test_ps_roi_align_emits_standard_ops_only() -> None:
    model = check_parity(next(c for c in CASES if c.id == "ps_roi_align_op"), "dynamo")
    assert "RoiAlign" in op_types(model) and all("::" not in t for t in op_types(model))
    assert len(model.graph.output) == 2
