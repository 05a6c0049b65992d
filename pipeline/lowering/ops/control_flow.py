"""Control flow: If, Loop, Scan.

Subgraphs are lowered by :meth:`LowerContext.lower_subgraph` inside the callables MIL's ``cond``
and ``while_loop`` use to build their blocks; outer-scope tensors stay visible through the
context's scope chain.

* If: a condition known at conversion time lowers only the taken branch (no MIL op); otherwise
  MIL ``cond``.
* Loop: MIL ``while_loop`` over ``(i, cond, carried..., lists...)``; each scan output is a MIL list
  written at index ``i`` and gathered after the loop (MIL lists are the growable arrays Core ML
  offers; the trip count may be unknown, so a preallocated tensor is not an option).
* Scan 8: the batch axis is unrolled (one loop per row, then stacked).
* Scan (opset 9+): the same ``while_loop``; scan inputs are read with ``gather`` at step ``t``
  along their axis (``L-1-t`` for reverse), scan outputs go through lists, then ``reverse`` and
  ``transpose`` for ``scan_output_directions`` / ``scan_output_axes``.

Spec changes read: If 1, 11 (outputs may differ in shape), 13, 16, 19, 21 (types); Loop 1, 11,
13 (sequence carried values), 16, 19, 21 (types); Scan 8 (batch axis, sequence_lens), 9 (no
batch, directions and axes), 11 (negative axes), 16, 19, 21 (types).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import onnx
from coremltools.converters.mil.mil import types
from coremltools.converters.mil.mil.block import curr_block

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.dtypes import legal_numpy, mil_dtype_string
from pipeline.lowering.node import Node
from pipeline.lowering.registry import onnx_op

log = logging.getLogger(__name__)


def _scalar(ctx: LowerContext, var: Any) -> Any:
    """A MIL scalar of a one-element tensor (conditions and trip counts may be ``[1]``).

    MIL tells a scalar from a rank-0 tensor (``less`` against a 0-d constant gives the latter),
    and a while_loop variable must keep its type, so rank-0 tensors become scalars too.
    """
    if var.rank == 0:
        if not types.is_tensor(var.sym_type):
            return var
        var = ctx.mb.expand_dims(x=var, axes=[0])
    return ctx.mb.squeeze(x=var)


def _owned(ctx: LowerContext, outputs: list[Any]) -> list[Any]:
    """Block outputs, each produced inside the current block (``identity`` for outer values)."""
    block = curr_block()
    inputs = {id(v) for v in block.inputs}
    owned = []
    for var in outputs:
        inside = var.op is not None and var.op.enclosing_block is block
        owned.append(var if inside or id(var) in inputs else ctx.mb.identity(x=var))
    return owned


def _branch(ctx: LowerContext, graph: onnx.GraphProto) -> Any:
    def build() -> list[Any]:
        return _owned(ctx, ctx.lower_subgraph(graph, {}))

    return build


@onnx_op("If", since=1)
def if_(ctx: LowerContext, node: Node) -> Any:
    """outputs = then_branch() if cond else else_branch().  MIL: cond (nothing when cond is const).

    Limits: both branches must produce outputs of the same dtype and rank (MIL cond types).
    """
    flag = node.const_input(0)
    then_g, else_g = node.attrs["then_branch"], node.attrs["else_branch"]
    if flag is not None:
        return tuple(ctx.lower_subgraph(then_g if bool(flag.reshape(-1)[0]) else else_g, {}))
    try:
        outs = ctx.mb.cond(pred=_scalar(ctx, node.input(0)), _true_fn=_branch(ctx, then_g),
                           _false_fn=_branch(ctx, else_g))
    except ValueError as exc:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: the branches' outputs differ in type ({exc}); MIL cond needs "
            "matching dtypes and ranks: make both branches produce the same types"
        ) from exc
    return tuple(outs) if isinstance(outs, (list, tuple)) else (outs,)


def _list_for(ctx: LowerContext, info: onnx.ValueInfoProto, node: Node, what: str) -> Any:
    """An empty growable MIL list for the per-iteration values declared by ``info``."""
    ttype = info.type.tensor_type
    if not info.type.HasField("tensor_type") or not ttype.HasField("shape"):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: {what} '{info.name}' has no declared tensor shape; MIL lists "
            "need the element rank: run onnx shape inference (onnx.shape_inference) on the model"
        )
    dims: list[Any] = []
    for k, d in enumerate(ttype.shape.dim):
        dims.append(int(d.dim_value) if d.HasField("dim_value") else f"{info.name}_d{k}")
    dtype = mil_dtype_string(legal_numpy(ttype.elem_type))
    # A scalar per step is stored as a [1] element (MIL tells scalars from rank-0 tensors, and the
    # body may produce either); _stack_list drops that axis again.
    return ctx.mb.make_list(init_length=0, dynamic_length=True, elem_shape=dims or [1], dtype=dtype)


def _write(ctx: LowerContext, node: Node, ls: Any, index: Any, value: Any) -> Any:
    """list_write of ``value``, reshaped to the list's declared element shape where MIL's type
    inference lost it (a symbolic dim the ONNX graph declares static, or a scalar)."""
    elem = ls.elem_type
    if not types.is_subtype(value.sym_type, elem):
        shape = list(elem.get_shape())
        if any(not isinstance(d, (int, np.integer)) for d in shape):
            raise UnsupportedOpError(
                f"lower: {node.describe()}: a scan output's per-step shape {list(value.shape)} does not "
                f"match its declared shape {shape}; fix the body graph's output shapes"
            )
        value = ctx.mb.reshape(x=value, shape=np.asarray(shape, np.int32))
    return ctx.mb.list_write(ls=ls, index=index, value=value)


def _fit_declared(ctx: LowerContext, value: Any, var: Any, info: onnx.ValueInfoProto) -> Any:
    """A loop-carried ``value`` reshaped to the body's declared static shape when MIL's type
    inference made a dim symbolic that the loop variable ``var`` has static (while_loop needs the
    output to be a subtype of the input); left as is otherwise."""
    if not hasattr(value, "sym_type") or types.is_subtype(value.sym_type, var.sym_type):
        return value
    ttype = info.type.tensor_type
    if not info.type.HasField("tensor_type") or not ttype.HasField("shape"):
        return value
    dims = [d.dim_value if d.HasField("dim_value") else None for d in ttype.shape.dim]
    if len(dims) != value.rank or None in dims or dims != list(var.shape):
        return value
    return ctx.mb.reshape(x=value, shape=np.asarray(dims, np.int32))


def _stack_list(ctx: LowerContext, ls: Any, length: Any, info: onnx.ValueInfoProto) -> Any:
    """``[ls[0], ..., ls[length-1]]`` stacked on a new axis 0 (scalar elements: shape [length])."""
    indices = ctx.mb.range_1d(start=np.int32(0), end=length, step=np.int32(1))
    stacked = ctx.mb.list_gather(ls=ls, indices=indices)
    if len(info.type.tensor_type.shape.dim) == 0:
        stacked = ctx.mb.squeeze(x=stacked, axes=[1])
    return stacked


@onnx_op("Loop", since=1)
def loop(ctx: LowerContext, node: Node) -> Any:
    """for i in range(M) while cond: (cond, v..., scan...) = body(i, cond, v...).  MIL: while_loop.

    Limits: scan outputs need a declared rank in the body graph; sequence-typed carried values
    are not supported.
    """
    mb = ctx.mb
    body: onnx.GraphProto = node.attrs["body"]
    trip = None if node.input(0) is None else _scalar(ctx, ctx.cast(node.input(0), np.int32))
    has_cond = node.input(1) is not None
    carried = [v for v in node.inputs[2:]]
    if any(not hasattr(v, "rank") for v in carried):
        raise UnsupportedOpError(
            f"lower: {node.describe()}: sequence-typed loop-carried values are not supported; "
            "carry tensors (concatenate inside the body) instead"
        )
    n_carried = len(carried)
    scan_infos = list(body.output[1 + n_carried :])
    lists = [_list_for(ctx, info, node, "scan output") for info in scan_infos]
    cond0 = _scalar(ctx, node.input(1)) if has_cond else ctx.const(np.array(True))
    names = [i.name for i in body.input]

    def cond_fn(i: Any, keep: Any, *_: Any) -> Any:
        if trip is None:
            return keep
        below = mb.less(x=i, y=trip)
        return mb.logical_and(x=below, y=keep) if has_cond else below

    def body_fn(i: Any, keep: Any, *rest: Any) -> list[Any]:
        bindings = dict(zip(names, [i, keep, *rest[:n_carried]]))
        outs = ctx.lower_subgraph(body, bindings)
        keep_out = _scalar(ctx, outs[0]) if has_cond else keep
        written = [_write(ctx, node, ls, i, v) for ls, v in zip(rest[n_carried:], outs[1 + n_carried :])]
        carried_out = [_fit_declared(ctx, v, var, info)
                       for v, var, info in zip(outs[1 : 1 + n_carried], rest[:n_carried], body.output[1:])]
        return _owned(ctx, [mb.add(x=i, y=np.int32(1)), keep_out, *carried_out, *written])

    loop_vars = (ctx.const(np.array(0, np.int32)), cond0, *carried, *lists)
    results = mb.while_loop(_cond=cond_fn, _body=body_fn, loop_vars=loop_vars)
    count = results[0]
    finals = list(results[2 : 2 + n_carried])
    scans = [_stack_list(ctx, ls, count, info) for ls, info in zip(results[2 + n_carried :], scan_infos)]
    return tuple(finals + scans)


@onnx_op("Scan", since=9)
def scan(ctx: LowerContext, node: Node) -> Any:
    """(s..., y...) = fold of body over slices of the scan inputs along their axes.  MIL: while_loop.

    Limits: the scan outputs need a declared rank in the body graph.
    """
    m = int(node.attrs["num_scan_inputs"])
    states, xs = list(node.inputs[: len(node.inputs) - m]), list(node.inputs[len(node.inputs) - m :])
    k = len(node.attrs["body"].output) - len(states)
    in_dirs = list(node.attrs.get("scan_input_directions") or [0] * m)
    in_axes = [a % x.rank for a, x in zip(node.attrs.get("scan_input_axes") or [0] * m, xs)]
    out_dirs = list(node.attrs.get("scan_output_directions") or [0] * k)
    out_axes = list(node.attrs.get("scan_output_axes") or [0] * k)
    return _scan_loop(ctx, node, states, xs, in_dirs, in_axes, out_dirs, out_axes)


@onnx_op("Scan", since=8)
def scan_v8(ctx: LowerContext, node: Node) -> Any:
    """Scan 8: states (B, ...) and scan inputs (B, T, ...) carry a leading batch axis; each batch
    row is the opset-9 scan over axis 1.  MIL: one while_loop per batch row (static B), stack.

    Limits: static batch size; sequence_lens only when constant and equal to T for every row.
    """
    mb = ctx.mb
    m = int(node.attrs["num_scan_inputs"])
    lens, states, xs = node.inputs[0], list(node.inputs[1 : len(node.inputs) - m]), list(node.inputs[len(node.inputs) - m :])
    batch = xs[0].shape[0]
    if not isinstance(batch, (int, np.integer)):
        raise UnsupportedOpError(f"lower: {node.describe()}: the batch axis must be static; fix the input shapes")
    steps = xs[0].shape[1]
    if lens is not None:
        val = ctx.value_of(lens)
        if val is None or not isinstance(steps, (int, np.integer)) or np.any(val != int(steps)):
            raise UnsupportedOpError(
                f"lower: {node.describe()}: sequence_lens shorter than the scan length (or run-time) is not "
                "supported; pad the sequences to one length and drop sequence_lens"
            )
    k = len(node.attrs["body"].output) - len(states)
    dirs = list(node.attrs.get("directions") or [0] * m)
    rows = []
    for b in range(int(batch)):
        row_states = [mb.gather(x=s, indices=np.int32(b), axis=0) for s in states]
        row_xs = [mb.gather(x=x, indices=np.int32(b), axis=0) for x in xs]
        rows.append(_scan_loop(ctx, node, row_states, row_xs, dirs, [0] * m, [0] * k, [0] * k))
    return tuple(mb.stack(values=[row[j] for row in rows], axis=0) for j in range(len(rows[0])))


def _scan_loop(ctx: LowerContext, node: Node, states: list[Any], xs: list[Any], in_dirs: list[int],
               in_axes: list[int], out_dirs: list[int], out_axes: list[int]) -> tuple[Any, ...]:
    """The opset-9 scan of ``xs`` along ``in_axes`` with carried ``states``: one MIL while_loop."""
    mb = ctx.mb
    body: onnx.GraphProto = node.attrs["body"]
    n = len(states)
    dim = xs[0].shape[in_axes[0]]
    if isinstance(dim, (int, np.integer)):
        length = ctx.const(np.array(int(dim), np.int32))
    else:
        length = mb.gather(x=mb.shape(x=xs[0]), indices=np.int32(in_axes[0]), axis=0)
    lists = [_list_for(ctx, info, node, "scan output") for info in body.output[n:]]
    names = [i.name for i in body.input]

    def cond_fn(i: Any, *_: Any) -> Any:
        return mb.less(x=i, y=length)

    def body_fn(i: Any, *rest: Any) -> list[Any]:
        slices = []
        for x, axis, rev in zip(xs, in_axes, in_dirs):
            t = mb.sub(x=mb.sub(x=length, y=np.int32(1)), y=i) if rev else i
            slices.append(mb.gather(x=x, indices=t, axis=axis))
        outs = ctx.lower_subgraph(body, dict(zip(names, [*rest[:n], *slices])))
        written = [_write(ctx, node, ls, i, v) for ls, v in zip(rest[n:], outs[n:])]
        return _owned(ctx, [mb.add(x=i, y=np.int32(1)), *outs[:n], *written])

    results = mb.while_loop(_cond=cond_fn, _body=body_fn,
                            loop_vars=(ctx.const(np.array(0, np.int32)), *states, *lists))
    finals = list(results[1 : 1 + n])
    outs = []
    for ls, rev, axis, info in zip(results[1 + n :], out_dirs, out_axes, body.output[n:]):
        y = _stack_list(ctx, ls, length, info)
        if rev:  # scan_output_directions=1: the output is built by prepending
            y = mb.reverse(x=y, axes=[0])
        axis %= y.rank
        if axis:
            perm = list(range(1, y.rank))
            perm.insert(axis, 0)
            y = mb.transpose(x=y, perm=perm)
        outs.append(y)
    return tuple(finals + outs)
