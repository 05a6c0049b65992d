"""Antialiased bicubic/bilinear resize vs onnxruntime."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.symbolics._support import Case, check_fails_without, check_parity, params

torch.manual_seed(1)
_X = torch.randn(1, 3, 12, 10)

CASES = [
    Case("bicubic_aa_scale", lambda x: F.interpolate(x, scale_factor=0.5, mode="bicubic",
                                                     antialias=True), (_X,), fails=("legacy",)),
    Case("bicubic_aa_size", lambda x: F.interpolate(x, size=(5, 7), mode="bicubic",
                                                    antialias=True), (_X,), fails=("legacy",)),
    Case("bilinear_aa_size", lambda x: F.interpolate(x, size=(4, 3), mode="bilinear",
                                                     antialias=True), (_X,), fails=("legacy",)),
    Case("bilinear_aa_up", lambda x: F.interpolate(x, size=(16, 15), mode="bilinear",
                                                   antialias=True), (_X,), fails=("legacy",)),
]


@pytest.mark.parametrize(("case", "exporter"), params(CASES, failing_only=True))
def test_fails_without_symbolic(case: Case, exporter: str) -> None:
    check_fails_without(case, exporter)


@pytest.mark.parametrize(("case", "exporter"), params(CASES))
def test_parity(case: Case, exporter: str) -> None:
    check_parity(case, exporter)

