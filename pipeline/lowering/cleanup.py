"""MIL clean-up run on the lowered program before coremltools' own passes.

``collapse_layout_chains``: exporters surround ops with layout shuffles that cancel or compose
(an LSTM's ``expand_dims -> transpose -> reshape -> transpose``, attention's reshape/transpose
ladders).  Each op of such a chain only moves elements, so the chain as a whole is one element
permutation of a static shape; when that permutation is expressible as at most ``reshape ->
transpose -> reshape`` with fewer ops than the chain, the chain is replaced.  coremltools' passes
(``merge_consecutive_reshapes``, ``reduce_transposes``) don't catch chains that mix the two.

The replacement is exact by construction: it is derived by pushing an index array through the
chain and checked by pushing it through the replacement.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import numpy as np
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil.types.symbolic import any_symbolic

log = logging.getLogger(__name__)

_LAYOUT_OPS = {"reshape", "transpose", "expand_dims", "squeeze"}
_MAX_RANK = 6  # permutations of more axes are not searched


def _is_layout(op: Any) -> bool:
    if op.op_type not in _LAYOUT_OPS or len(op.outputs) != 1:
        return False
    x, y = op.inputs["x"], op.outputs[0]
    if x.shape is None or y.shape is None or any_symbolic(x.shape) or any_symbolic(y.shape):
        return False
    if op.op_type == "reshape" and op.inputs["shape"].val is None:
        return False
    return not (op.op_type == "transpose" and op.inputs["perm"].val is None)


def _apply(op: Any, arr: np.ndarray) -> np.ndarray:
    """Push an index array through one layout op, by its static output shape / perm."""
    if op.op_type == "transpose":
        return np.transpose(arr, [int(p) for p in op.inputs["perm"].val])
    return arr.reshape(tuple(int(d) for d in op.outputs[0].shape))


def _chains(block: Any) -> list[list[Any]]:
    """Maximal runs of layout ops where each feeds only the next."""
    outputs = {id(v) for v in block.outputs}
    chains: list[list[Any]] = []
    taken: set[int] = set()
    for op in list(block.operations):
        if id(op) in taken or not _is_layout(op):
            continue
        producer = op.inputs["x"].op
        if producer is not None and _is_layout(producer) and len(producer.outputs[0].child_ops) == 1 \
                and id(producer.outputs[0]) not in outputs:
            continue  # not the head of its chain
        chain = [op]
        while True:
            out = chain[-1].outputs[0]
            if id(out) in outputs or len(out.child_ops) != 1:
                break
            nxt = out.child_ops[0]
            if not _is_layout(nxt) or nxt.inputs["x"] is not out:
                break
            chain.append(nxt)
        taken.update(id(o) for o in chain)
        if len(chain) >= 2:
            chains.append(chain)
    return chains


def _find_perm(src: np.ndarray, dst: np.ndarray) -> list[int] | None:
    """A permutation p with np.transpose(src, p) == dst, or None."""
    if src.ndim != dst.ndim or src.ndim > _MAX_RANK:
        return None
    for perm in itertools.permutations(range(src.ndim)):
        if tuple(src.shape[p] for p in perm) != dst.shape:
            continue
        if np.array_equal(np.transpose(src, perm), dst):
            return list(perm)
    return None


def _plan(in_shape: tuple[int, ...], out_shape: tuple[int, ...], result: np.ndarray) -> list[tuple[str, Any]] | None:
    """At most reshape -> transpose -> reshape reproducing ``result`` from ``arange(in_shape)``."""
    flat = result.reshape(-1)
    if np.array_equal(flat, np.arange(flat.size)):
        return [] if in_shape == out_shape else [("reshape", out_shape)]
    mid_in = tuple(d for d in in_shape if d != 1) or (1,)
    squeezed = result.reshape(tuple(d for d in out_shape if d != 1) or (1,))
    perm = _find_perm(np.arange(flat.size).reshape(mid_in), squeezed)
    if perm is None:
        return None
    steps: list[tuple[str, Any]] = []
    if mid_in != in_shape:
        steps.append(("reshape", mid_in))
    steps.append(("transpose", perm))
    if squeezed.shape != out_shape:
        steps.append(("reshape", out_shape))
    return steps


def collapse_layout_chains(program: Any) -> int:
    """Replace layout-op chains by shorter equivalents in every block; returns ops saved."""
    saved = 0
    for func in program.functions.values():
        saved += _collapse_block(func)
    return saved


def _collapse_block(block: Any) -> int:
    saved = 0
    for op in list(block.operations):
        for inner in op.blocks:
            saved += _collapse_block(inner)
    for chain in _chains(block):
        head_in = chain[0].inputs["x"]
        tail = chain[-1]
        old = tail.outputs[0]
        in_shape = tuple(int(d) for d in head_in.shape)
        out_shape = tuple(int(d) for d in old.shape)
        arr = np.arange(int(np.prod(in_shape, dtype=np.int64))).reshape(in_shape)
        for op in chain:
            arr = _apply(op, arr)
        steps = _plan(in_shape, out_shape, arr)
        if steps is None or len(steps) >= len(chain):
            continue
        if not steps and any(v is old for v in block.outputs):
            continue  # an output must stay a value of its own
        name = old.name
        with block, mb.set_before_op(tail):
            new = head_in
            for i, (kind, arg) in enumerate(steps):
                step_name = f"{name}__layout{i}"
                if kind == "reshape":
                    new = mb.reshape(x=new, shape=np.asarray(arg, np.int32), name=step_name)
                else:
                    new = mb.transpose(x=new, perm=np.asarray(arg, np.int32), name=step_name)
        old.name = f"{name}__replaced"
        block.replace_uses_of_var_after_op(anchor_op=tail, old_var=old, new_var=new)
        block.remove_ops(list(reversed(chain)))
        if steps:
            new.name = name
        saved += len(chain) - len(steps)
    if saved:
        log.debug("collapse_layout_chains saved %d ops", saved)
    return saved
