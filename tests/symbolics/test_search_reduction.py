"""searchsorted, median, kthvalue, cumprod vs onnxruntime."""

from __future__ import annotations

import pytest
import torch

from tests.symbolics._support import Case, check_fails_without, check_parity, params

torch.manual_seed(3)
_SEQ = torch.sort(torch.randn(2, 7), dim=-1)[0]
_SEQ1 = torch.sort(torch.randn(9))[0]
# values include exact hits on the sequence, so left/right differ.
_VALS = torch.cat([torch.randn(2, 4), _SEQ[:, 2:4]], dim=1)

CASES = [
    Case("searchsorted_left", torch.searchsorted, (_SEQ, _VALS)),
    Case("searchsorted_right", lambda s, v: torch.searchsorted(s, v, right=True), (_SEQ, _VALS)),
    Case("searchsorted_1d_int32", lambda s, v: torch.searchsorted(s, v, out_int32=True),
         (_SEQ1, torch.cat([torch.randn(3, 5), _SEQ1[:5].reshape(1, 5)]))),
    Case("median_dim", lambda x: torch.median(x, 1), (torch.randn(3, 6, 2),)),
    Case("median_keepdim", lambda x: torch.median(x, -1, keepdim=True), (torch.randn(4, 5),)),
    Case("median_all", torch.median, (torch.randn(3, 5),)),
    Case("kthvalue", lambda x: torch.kthvalue(x, 3, 1), (torch.randn(2, 7, 3),)),
    Case("cumprod", lambda x: torch.cumprod(x, 1), (torch.randn(2, 6, 3),)),
    Case("cumprod_last_f64", lambda x: torch.cumprod(x, -1, dtype=torch.float64),
         (torch.rand(3, 5) + 0.5,)),
]


@pytest.mark.parametrize(("case", "exporter"), params(CASES, failing_only=True))
def test_fails_without_symbolic(case: Case, exporter: str) -> None:
    check_fails_without(case, exporter)


@pytest.mark.parametrize(("case", "exporter"), params(CASES))
def test_parity(case: Case, exporter: str) -> None:
    check_parity(case, exporter)
