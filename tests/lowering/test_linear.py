"""Lowering of matrix products (MatMul, Gemm, Einsum), checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lowering.support import Case, check, make_model, rand

F16 = np.float16
I64 = np.int64

CASES = [
    Case("MatMul", [rand(3, 4), rand(4, 5)], opset=7),
    Case(
        "MatMul",
        [rand(2, 3, 4), rand(4, 5)],
        const_inputs=(1,),
        opset=9,
        id="MatMul-const-B-linear",
    ),
    Case(
        "MatMul",
        [rand(2, 2, 3, 4), rand(4, 5)],
        const_inputs=(1,),
        opset=13,
        id="MatMul-const-B-rank4",
    ),
    Case("MatMul", [rand(4), rand(2, 4, 3)], id="MatMul-1d-left"),
    Case("MatMul", [rand(2, 3, 4), rand(4)], id="MatMul-1d-right"),
    Case("MatMul", [rand(4), rand(4)], id="MatMul-1d-both"),
    Case("MatMul", [rand(2, 1, 3, 4), rand(5, 4, 2)], id="MatMul-batch-broadcast"),
    Case(
        "MatMul",
        [rand(2, 3, dtype=I64, low=-5, high=5), rand(3, 4, dtype=I64, low=-5, high=5)],
        opset=13,
        id="MatMul-int64",
    ),
    Case(
        "MatMul",
        [rand(2, 8, 16, dtype=F16), rand(16, 8, dtype=F16)],
        const_inputs=(1,),
        id="MatMul-fp16",
    ),
    Case("Gemm", [rand(3, 4), rand(4, 5), rand(5)], opset=7, const_inputs=(1, 2)),
    Case(
        "Gemm",
        [rand(4, 3), rand(5, 4), rand(1, 5)],
        {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0},
        opset=9,
        const_inputs=(1, 2),
        id="Gemm-trans-alpha-beta-const",
    ),
    Case(
        "Gemm",
        [rand(3, 4), rand(4, 5), rand(3, 5)],
        {"beta": 0.5},
        opset=11,
        const_inputs=(1, 2),
        id="Gemm-const-B-full-C",
    ),
    Case(
        "Gemm",
        [rand(3, 4), rand(4, 5)],
        {"alpha": 2.0},
        opset=11,
        const_inputs=(1,),
        id="Gemm-no-C",
    ),
    Case(
        "Gemm",
        [rand(3, 4), rand(5, 4), rand(3, 1)],
        {"transB": 1, "alpha": 1.5, "beta": 0.5},
        opset=13,
        id="Gemm-dynamic",
    ),
    Case(
        "Gemm",
        [rand(4, 3), rand(4, 5), np.array(0.25, np.float32)],
        {"transA": 1},
        opset=13,
        const_inputs=(2,),
        id="Gemm-dynamic-B-scalar-C",
    ),
    Case(
        "Gemm",
        [rand(3, 4), rand(4, 5), rand(5)],
        {"beta": 1.5},
        opset=13,
        const_inputs=(1,),
        id="Gemm-const-B-dynamic-C",
    ),
    Case(
        "Gemm",
        [rand(3, 8, dtype=F16), rand(8, 4, dtype=F16), rand(4, dtype=F16)],
        opset=13,
        const_inputs=(1, 2),
        id="Gemm-fp16",
    ),
]

EINSUM = [
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("nchw,nwhu->nchu", [(2, 3, 4, 5), (2, 5, 4, 6)]),
    ("chw,whr->chr", [(3, 4, 5), (5, 4, 6)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("ij->ji", [(3, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("bii->b", [(2, 3, 3)]),
    ("ij->", [(3, 4)]),
    ("i,i->", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij,j->i", [(3, 4), (4,)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (1, 4, 5)]),
    ("...ij,jk", [(2, 2, 3, 4), (4, 5)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
    ("abc,cd,de->abe", [(2, 3, 4), (4, 5), (5, 2)]),
    ("ijk,ikj->ij", [(2, 3, 4), (2, 4, 3)]),
    ("abcd,cb->ad", [(2, 3, 4, 5), (4, 3)]),
    ("i,i,i->i", [(4,), (4,), (4,)]),
]

for k, (eq, shapes) in enumerate(EINSUM):
    CASES.append(
        Case(
            "Einsum",
            [rand(*s, seed=k + i) for i, s in enumerate(shapes)],
            {"equation": eq},
            opset=12 if k % 2 else 17,
            id=f"Einsum-{eq}",
        )
    )
CASES += [
    Case(
        "Einsum",
        [rand(2, 3, 4, dtype=F16), rand(2, 4, 5, dtype=F16)],
        {"equation": "bij,bjk->bik"},
        id="Einsum-fp16",
    ),
    Case(
        "Einsum",
        [rand(3, 4, dtype=I64, low=-4, high=4), rand(4, dtype=I64, low=-4, high=4)],
        {"equation": "ij,j->i"},
        id="Einsum-int64",
    ),
    Case(
        "Einsum",
        [rand(3, 4), rand(4, 5)],
        {"equation": "ij,jk->ik"},
        opset=22,
        const_inputs=(1,),
        id="Einsum-opset22-const",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_linear(case: Case) -> None:
    check(case)


def _mil_ops(case: Case) -> list[str]:
    from pipeline.lowering import lower

    model, _ = make_model(case)
    report = lower(model, target=case.target, verify=False).report
    return [op for rec in report["nodes"] for op in rec["mil_ops"]]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (Case("Gemm", [rand(3, 4), rand(4, 5), rand(5)], const_inputs=(1, 2)), ["linear"]),
        (Case("MatMul", [rand(2, 3, 4), rand(4, 5)], const_inputs=(1,)), ["linear"]),
        (
            Case("Einsum", [rand(2, 3, 4, 5), rand(2, 3, 6, 5)], {"equation": "bhqd,bhkd->bhqk"}),
            ["matmul"],
        ),
        (
            Case("Einsum", [rand(2, 3, 4, 5), rand(2, 5, 4, 6)], {"equation": "nchw,nwhu->nchu"}),
            ["einsum"],
        ),
    ],
    ids=["gemm-linear", "matmul-linear", "einsum-matmul-transpose-y", "einsum-native"],
)
def test_lean_lowering(case: Case, expected: list[str]) -> None:
    # Op count is part of the contract: these common forms must be a single MIL op.
    assert _mil_ops(case) == expected
