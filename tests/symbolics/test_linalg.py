"""linalg_inv (adjugate / Det) and cdist vs onnxruntime."""

from __future__ import annotations

import pytest
import torch

import symbolics
from pipeline.errors import ExportError
from tests.symbolics._support import (
    Case,
    check_fails_without,
    check_parity,
    export_dynamo,
    op_types,
    params,
)

torch.manual_seed(2)


def _well_conditioned(*shape: int) -> torch.Tensor:
    """Random matrices plus n*I, so the inverse is well defined and moderate."""
    n = shape[-1]
    return torch.randn(*shape) + n * torch.eye(n)


CASES = [
    Case("inv_batched_4x4", torch.linalg.inv, (_well_conditioned(2, 3, 4, 4),)),
    Case("inv_3x3", torch.linalg.inv, (_well_conditioned(3, 3),)),
    Case("inv_2x2", lambda a: torch.linalg.inv(a) * 2.0, (_well_conditioned(5, 2, 2),)),
    Case("cdist_p2", torch.cdist, (torch.randn(2, 5, 3), torch.randn(2, 4, 3)),
         fails=("dynamo",)),
    # TorchScript's built-in cdist symbolic gives NaN for p != 2 (negative base to power p).
    Case("cdist_p1", lambda a, b: torch.cdist(a, b, p=1.0),
         (torch.randn(5, 3), torch.randn(6, 3))),
    Case("cdist_p3", lambda a, b: torch.cdist(a, b, p=3.0),
         (torch.randn(1, 5, 4), torch.randn(1, 6, 4))),
]


@pytest.mark.parametrize(("case", "exporter"), params(CASES, failing_only=True))
def test_fails_without_symbolic(case: Case, exporter: str) -> None:
    check_fails_without(case, exporter)


@pytest.mark.parametrize(("case", "exporter"), params(CASES))
def test_parity(case: Case, exporter: str) -> None:
    check_parity(case, exporter)


def test_inverse_uses_standard_det() -> None:
    model = check_parity(CASES[1], "dynamo")
    assert "Det" in op_types(model)
    assert symbolics.used_in(model) == ["aten::linalg_inv"]


def test_inverse_inv_ex_helper() -> None:
    """torch.linalg.inv_ex maps to the entry's helper: inverse plus a zero info tensor."""
    case = Case("inv_ex", lambda a: torch.linalg.inv_ex(a), (_well_conditioned(2, 3, 3),),
                fails=())
    check_parity(case, "dynamo")


class _Inverse(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.inv(x)


def test_inverse_needs_static_shape() -> None:
    """A dynamic matrix size is refused with our ExportError, wrapped by the exporter."""
    n = torch.export.Dim("n", min=2, max=8)
    with pytest.raises(Exception) as info:
        torch.onnx.export(_Inverse(), (_well_conditioned(3, 3),), dynamo=True,
                          dynamic_shapes=({0: n, 1: n},),
                          custom_translation_table=symbolics.translation_table(18))
    chain = [info.value]
    while chain[-1].__cause__ is not None:
        chain.append(chain[-1].__cause__)
    assert any(isinstance(e, ExportError) and "static" in str(e) for e in chain)


def test_export_dynamo_helper_runs() -> None:
    assert export_dynamo(torch.linalg.inv, (_well_conditioned(3, 3),)).graph.node
