"""Einsum, in general: any number of operands, ellipsis, repeated labels, implicit output.

MIL ``einsum`` covers only ``nchw,nwhu->nchu`` and ``chw,whr->chr`` (and relabelings); those
stay one op.  Every other equation is composed: diagonals (a label repeated in one operand) by
an identity mask and a sum, labels no one else needs summed away early, then operands
contracted left to right as batched matrix products (transpose, reshape, matmul, reshape),
and a final transpose into the output order.  Transposes and reshapes that would not change
anything are not emitted, so ``bij,bjk->bik`` is one matmul and ``bhqd,bhkd->bhqk`` one matmul
with ``transpose_y``.

Spec changes read: Einsum 12, 28 (types only).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.ops.conv_pool import static_dims
from pipeline.lowering.registry import composite_op

log = logging.getLogger(__name__)


class _Term:
    """One operand during the contraction: MIL value, its labels and static sizes."""

    def __init__(self, var: Any, labels: list[str], sizes: list[int]) -> None:
        self.var, self.labels, self.sizes = var, labels, sizes

    def size(self, label: str) -> int:
        return self.sizes[self.labels.index(label)]


def parse(equation: str, ranks: list[int]) -> tuple[list[list[str]], list[str]]:
    """Labels per operand and of the output; ellipsis dims become labels ``.0``, ``.1``, ...

    Ellipsis dims are right-aligned across operands (numpy broadcasting).  Without ``->`` the
    output is the ellipsis dims then the labels used exactly once, alphabetically.
    """
    text = equation.replace(" ", "")
    lhs, arrow, rhs = text.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise ValueError(f"equation has {len(terms)} operands, the node has {len(ranks)} inputs")
    ell = max((r - (len(t) - 3) for t, r in zip(terms, ranks) if "..." in t), default=0)
    ell_labels = [f".{i}" for i in range(ell)]

    def expand(term: str, rank: int | None) -> list[str]:
        head, dots, tail = term.partition("...")
        if not dots:
            return list(term)
        n = ell if rank is None else rank - len(head) - len(tail)
        return list(head) + ell_labels[ell - n :] + list(tail)

    labels = [expand(t, r) for t, r in zip(terms, ranks)]
    for t, lab, r in zip(terms, labels, ranks):
        if len(lab) != r:
            raise ValueError(f"term {t!r} does not match an operand of rank {r}")
    if arrow:
        out = expand(rhs, None)
    else:
        letters = [c for t in terms for c in t.replace("...", "")]
        out = ell_labels + sorted(c for c in set(letters) if letters.count(c) == 1)
    return labels, out


def _native(ctx: LowerContext, terms: list[_Term], out: list[str], equation: str) -> Any | None:
    """MIL einsum when the equation is one of its two forms with compatible sizes, else None."""
    if len(terms) != 2 or not ctx.is_float(terms[0].var):
        return None
    a, b = terms
    if (
        any(lab.startswith(".") for lab in a.labels + b.labels)
        or len(set(a.labels + b.labels)) != len(a.labels) + 1
    ):
        return None
    if len(a.labels) == 4 and len(b.labels) == 4:
        n, c, h, w = a.labels
        ok = b.labels == [n, w, h, b.labels[3]] and out == [n, c, h, b.labels[3]]
        ok = ok and a.size(n) == b.size(n) and a.size(h) == b.size(h)
    elif len(a.labels) == 3 and len(b.labels) == 3:
        c, h, w = a.labels
        ok = (
            b.labels == [w, h, b.labels[2]]
            and out == [c, h, b.labels[2]]
            and a.size(h) == b.size(h)
        )
    else:
        return None
    if not ok or ctx.np_dtype(a.var) != ctx.np_dtype(b.var):
        return None
    return ctx.mb.einsum(
        values=(a.var, b.var),
        equation="".join(a.labels) + "," + "".join(b.labels) + "->" + "".join(out),
    )


def _reduce(ctx: LowerContext, t: _Term, drop: list[str], keep: bool = False) -> _Term:
    """Sum ``t`` over the labels ``drop`` (kept as size 1 when ``keep``)."""
    if not drop:
        return t
    axes = [t.labels.index(lab) for lab in drop]
    var = ctx.mb.reduce_sum(x=t.var, axes=axes, keep_dims=keep)
    if keep:
        return _Term(var, t.labels, [1 if i in axes else s for i, s in enumerate(t.sizes)])
    return _Term(
        var,
        [lab for i, lab in enumerate(t.labels) if i not in axes],
        [s for i, s in enumerate(t.sizes) if i not in axes],
    )


def _diagonal(ctx: LowerContext, t: _Term) -> _Term:
    """Collapse labels repeated within one operand: x * eye over the pair, summed over one."""
    while len(set(t.labels)) != len(t.labels):
        seen: dict[str, int] = {}
        for j, lab in enumerate(t.labels):
            if lab in seen:
                i = seen[lab]
                break
            seen[lab] = j
        n = t.sizes[i]
        shape = [1] * len(t.labels)
        shape[i] = shape[j] = n
        mask = np.eye(n, dtype=ctx.np_dtype(t.var)).reshape(shape)
        masked = ctx.mb.mul(x=t.var, y=ctx.const(mask))
        var = ctx.mb.reduce_sum(x=masked, axes=[j], keep_dims=False)
        t = _Term(var, t.labels[:j] + t.labels[j + 1 :], t.sizes[:j] + t.sizes[j + 1 :])
    return t


def _transpose(ctx: LowerContext, t: _Term, order: list[str]) -> _Term:
    perm = [t.labels.index(lab) for lab in order]
    if perm == list(range(len(perm))):
        return t
    return _Term(ctx.mb.transpose(x=t.var, perm=perm), order, [t.sizes[p] for p in perm])


def _reshape(ctx: LowerContext, var: Any, old: list[int], new: list[int]) -> Any:
    return var if old == new else ctx.mb.reshape(x=var, shape=np.array(new, np.int32))


def _contract(ctx: LowerContext, a: _Term, b: _Term, later: set[str]) -> _Term:
    """Contract two operands as a batched matmul over their shared, no-longer-needed labels."""
    shared = [lab for lab in a.labels if lab in b.labels]
    contract = [lab for lab in shared if lab not in later]
    batch = [lab for lab in shared if lab in later]
    # A label summed here but of size 1 on one side: sum the other side first (broadcast rule).
    a = _reduce(
        ctx, a, [lab for lab in contract if b.size(lab) == 1 and a.size(lab) != 1], keep=True
    )
    b = _reduce(
        ctx, b, [lab for lab in contract if a.size(lab) == 1 and b.size(lab) != 1], keep=True
    )
    left = [lab for lab in a.labels if lab not in b.labels]
    right = [lab for lab in b.labels if lab not in a.labels]
    nb = len(batch)
    # Operand order batch+contract+left (A) / batch+right+contract (B) uses matmul's transpose flags.
    ta = (
        a.labels == batch + contract + left
        and len(left) + len(contract) > 0
        and a.labels != batch + left + contract
    )
    tb = (
        b.labels == batch + right + contract
        and len(right) + len(contract) > 0
        and b.labels != batch + contract + right
    )
    a = _transpose(ctx, a, batch + (contract + left if ta else left + contract))
    b = _transpose(ctx, b, batch + (right + contract if tb else contract + right))
    k = math.prod(a.size(lab) for lab in contract)
    m = math.prod(a.size(lab) for lab in left)
    n = math.prod(b.size(lab) for lab in right)
    a_mat = [k, m] if ta else [m, k]
    b_mat = [n, k] if tb else [k, n]
    x = _reshape(ctx, a.var, a.sizes, a.sizes[:nb] + a_mat)
    y = _reshape(ctx, b.var, b.sizes, b.sizes[:nb] + b_mat)
    prod = ctx.mb.matmul(x=x, y=y, transpose_x=ta, transpose_y=tb)
    bsizes = [max(p, q) for p, q in zip(a.sizes[:nb], b.sizes[:nb])]
    sizes = bsizes + [a.size(lab) for lab in left] + [b.size(lab) for lab in right]
    var = _reshape(ctx, prod, bsizes + [m, n], sizes)
    return _Term(var, batch + left + right, sizes)


@composite_op("Einsum", since=12)
def einsum(ctx: LowerContext, node: Node) -> Any:
    """y = sum over the labels absent from the output of the product of the operands.  MIL: einsum (its two forms); else matmul, transpose, reshape, reduce_sum, mul.

    Limits: needs static shapes (the composite reshapes to matrices).
    """
    equation = str(node.attrs["equation"])
    values = [v for v in node.inputs if v is not None]
    try:
        labels, out = parse(equation, [v.rank for v in values])
    except ValueError as exc:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: equation {equation!r}: {exc}; fix the model"
        ) from None
    terms = []
    for var, labs in zip(values, labels):
        dims = static_dims(var)
        if dims is None:
            raise UnsupportedOpError(
                f"lower: {node.describe()}: Einsum needs static input shapes, got {list(var.shape)}; "
                "fix the input shapes (--input NAME:SHAPE)"
            )
        terms.append(_Term(var, labs, dims))
    dt = ctx.np_dtype(terms[0].var)
    for t in terms[1:]:
        t.var = ctx.cast(t.var, dt)
    native = _native(ctx, terms, out, equation)
    if native is not None:
        return native
    terms = [_diagonal(ctx, t) for t in terms]
    for i, t in enumerate(terms):
        others = set(out).union(*(set(o.labels) for j, o in enumerate(terms) if j != i))
        terms[i] = _reduce(ctx, t, [lab for lab in t.labels if lab not in others])
    acc = terms[0]
    for i in range(1, len(terms)):
        later = set(out).union(*(set(o.labels) for o in terms[i + 1 :]))
        acc = _contract(ctx, acc, terms[i], later)
    acc = _reduce(ctx, acc, [lab for lab in acc.labels if lab not in out])
    result = _transpose(ctx, acc, out).var
    if any(result is v for v in values):  # e.g. 'ij->ij': the output must be a new value
        return ctx.mb.identity(x=result)
    return result
