"""MIL clean-up run on the lowered program before coremltools' own passes.

``collapse_layout_chains``: exporters surround ops with layout shuffles that cancel or compose
(an LSTM's ``expand_dims -> transpose -> reshape -> transpose``, attention's reshape/transpose
ladders).  Each op of such a chain only moves elements, so the chain as a whole is one element
permutation of a static shape; when that permutation is expressible as at most ``reshape ->
transpose -> reshape`` with fewer ops than the chain, the chain is replaced.  coremltools' passes
(``merge_consecutive_reshapes``, ``reduce_transposes``) don't catch chains that mix the two.

The replacement is exact by construction: it is derived by pushing an index array through the
chain (its axes read off the result's strides, :func:`_plan`) and checked by pushing it through
the replacement.

:data:`CLEANUPS` also runs the passes of ``cleanup_attention`` (scale folding, softmax NaN
guards), ``cleanup_stack``, ``cleanup_linear`` and ``cleanup_split``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil.types.symbolic import any_symbolic

from pipeline.lowering.cleanup_attention import drop_softmax_nan_guards, fold_matmul_scales
from pipeline.lowering.cleanup_linear import unflatten_linear_chains
from pipeline.lowering.cleanup_split import split_tiling_slices
from pipeline.lowering.cleanup_stack import stack_expanded_concats

log = logging.getLogger(__name__)

_LAYOUT_OPS = {"reshape", "transpose", "expand_dims", "squeeze"}
_MAX_RANK = 6  # no replacement of higher rank is built


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


def _levels(flat: np.ndarray) -> list[tuple[int, int]] | None:
    """(size, source stride) per output axis, innermost first, of a strided index array.

    Greedy: the innermost run of a constant stride is one axis, then the run of repeating
    blocks of that is the next, and so on; consecutive axes that merge into one arithmetic run
    come out as one axis.  None when ``flat`` is not of that form.
    """
    total, block, levels = flat.size, 1, []
    while block < total:
        stride = int(flat[block] - flat[0])
        count = 1
        while (count + 1) * block <= total and np.array_equal(
                flat[count * block:(count + 1) * block], flat[:block] + count * stride):
            count += 1
        if count == 1 or total % (block * count):
            return None
        levels.append((count, stride))
        block *= count
    return levels


def _refine(levels: list[tuple[int, int]], out_shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """Split merged axes back into the output's own axes, when its sizes tile them exactly."""
    dims = [d for d in reversed(out_shape) if d != 1]
    refined: list[tuple[int, int]] = []
    for size, stride in levels:
        prod = 1
        while dims and size % (prod * dims[0]) == 0 and prod < size:
            refined.append((dims[0], stride * prod))
            prod *= dims.pop(0)
        if prod != size:
            return levels
    return refined


def _plan(in_shape: tuple[int, ...], out_shape: tuple[int, ...], result: np.ndarray) -> list[tuple[str, Any]] | None:
    """At most reshape -> transpose -> reshape reproducing ``result`` from ``arange(in_shape)``.

    The output's axes (innermost first, with their source strides) are read off ``result``;
    sorted by stride they are the source's row-major factorisation, whose transpose is the
    chain.  Unit axes are placed to spare a reshape where possible; the plan is verified.
    """
    flat = result.reshape(-1)
    if np.array_equal(flat, np.arange(flat.size)):
        return [] if in_shape == out_shape else [("reshape", out_shape)]
    levels = _levels(flat)
    levels = levels and _refine(levels, out_shape)
    if not levels or len(levels) > _MAX_RANK:
        return None
    by_stride = sorted(range(len(levels)), key=lambda i: -levels[i][1])
    expect = 1
    for i in reversed(by_stride):  # strides must be those of a row-major source
        if levels[i][1] != expect:
            return None
        expect *= levels[i][0]
    src_axis = {lvl: a for a, lvl in enumerate(by_stride)}
    src = tuple(levels[i][0] for i in by_stride)
    perm = [src_axis[lvl] for lvl in reversed(range(len(levels)))]
    options = [_steps(in_shape, src, perm, out_shape)]
    units = sum(1 for d in out_shape if d == 1)
    moved = tuple(src[p] for p in perm)
    if units and len(src) + units <= _MAX_RANK and moved == tuple(d for d in out_shape if d != 1):
        # Unit axes at the front of the source, moved by the transpose to where the output has them.
        src_u = (1,) * units + src
        order = iter(range(units))
        rest = iter(p + units for p in perm)
        perm_u = [next(order) if d == 1 else next(rest) for d in out_shape]
        options.append(_steps(in_shape, src_u, perm_u, out_shape))
    best = min(options, key=len)
    check = np.arange(flat.size).reshape(in_shape)
    for kind, arg in best:
        check = check.reshape(arg) if kind == "reshape" else np.transpose(check, arg)
    return best if np.array_equal(check, result) else None


def _steps(in_shape: tuple[int, ...], src: tuple[int, ...], perm: list[int],
           out_shape: tuple[int, ...]) -> list[tuple[str, Any]]:
    steps: list[tuple[str, Any]] = []
    if src != in_shape:
        steps.append(("reshape", src))
    if perm != sorted(perm):
        steps.append(("transpose", perm))
    if tuple(src[p] for p in perm) != out_shape:
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


#: The clean-up passes run, in order, on every lowered program before coremltools' passes.
#: Each takes the MIL program, rewrites it in place and returns how many ops it saved.
CLEANUPS: list[Any] = [
    fold_matmul_scales,  # before the layout pass: the dropped mul may end a layout chain
    drop_softmax_nan_guards,
    stack_expanded_concats,
    unflatten_linear_chains,
    split_tiling_slices,
    collapse_layout_chains,
]


def clean_program(program: Any) -> dict[str, int]:
    """Run every pass of :data:`CLEANUPS`; returns ops saved per pass (for the report)."""
    return {fn.__name__: fn(program) for fn in CLEANUPS}
