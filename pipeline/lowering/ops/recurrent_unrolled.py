"""Unrolled composite of LSTM, GRU and RNN for what MIL's cells cannot express.

Used by :mod:`pipeline.lowering.ops.recurrent` when a node has activations outside MIL's cell set
(LeakyRelu, Elu, Softsign, Softplus, ThresholdedRelu, HardSigmoid / Affine / ScaledTanh with
non-default alpha, beta), ``clip``, ``input_forget``, unequal ``sequence_lens``, weights computed
at run time, or GRU ``linear_before_reset=1`` below iOS18.

Why unrolled: the input projection of every step is one ``linear`` (a single large matmul the
Neural Engine runs well); each step then costs one small ``linear`` for the recurrence plus
elementwise gate math.  A ``while_loop`` would keep the program short but runs on the CPU only
and cannot be scheduled across steps, so the static sequence length is unrolled.  Sequence
lengths per batch entry mask the state update with ``select``; a reverse pass with lengths runs
on ``reverse_sequence`` of the input.

Gate math follows the ONNX spec: ``clip`` bounds every gate's input to its activation;
peepholes add ``P (.) c_{t-1}`` to i and f and ``P (.) c_t`` to o; ``input_forget`` sets
``f = 1 - i``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node

if TYPE_CHECKING:
    from pipeline.lowering.ops.recurrent import Activation, Recurrence

log = logging.getLogger(__name__)

#: ONNX recurrent activation (lower case) -> MIL builder for it.
ACTIVATIONS: dict[str, Callable[[LowerContext, Any, Any], Any]] = {
    "sigmoid": lambda ctx, x, a: ctx.mb.sigmoid(x=x),
    "tanh": lambda ctx, x, a: ctx.mb.tanh(x=x),
    "relu": lambda ctx, x, a: ctx.mb.relu(x=x),
    "affine": lambda ctx, x, a: ctx.mb.linear_activation(
        x=x, alpha=ctx.scalar_like(x, a.alpha), beta=ctx.scalar_like(x, a.beta)),
    "leakyrelu": lambda ctx, x, a: ctx.mb.leaky_relu(x=x, alpha=ctx.scalar_like(x, a.alpha)),
    "thresholdedrelu": lambda ctx, x, a: ctx.mb.thresholded_relu(x=x, alpha=ctx.scalar_like(x, a.alpha)),
    "scaledtanh": lambda ctx, x, a: ctx.mb.scaled_tanh(
        x=x, alpha=ctx.scalar_like(x, a.alpha), beta=ctx.scalar_like(x, a.beta)),
    "hardsigmoid": lambda ctx, x, a: ctx.mb.sigmoid_hard(
        x=x, alpha=ctx.scalar_like(x, a.alpha), beta=ctx.scalar_like(x, a.beta)),
    "elu": lambda ctx, x, a: ctx.mb.elu(x=x, alpha=ctx.scalar_like(x, a.alpha)),
    "softsign": lambda ctx, x, a: ctx.mb.softsign(x=x),
    "softplus": lambda ctx, x, a: ctx.mb.softplus(x=x),
}


class _Cell:
    """Builders for one direction's step: weights (numpy or MIL), clip, activations."""

    def __init__(self, ctx: LowerContext, rec: Recurrence, d: int) -> None:
        self.ctx, self.rec, self.d = ctx, rec, d
        self.dt = rec.dtype
        gh = rec.gates * rec.hidden
        self.w = self._slice(rec.w, rec.w_var, d)
        self.r = self._slice(rec.r, rec.r_var, d)
        b = self._slice(rec.b, rec.b_var, d)
        if b is None:
            self.wb = self.rb = None
        elif isinstance(b, np.ndarray):
            self.wb, self.rb = b[:gh], b[gh:]
        else:
            self.wb = ctx.mb.slice_by_index(x=b, begin=[0], end=[gh])
            self.rb = ctx.mb.slice_by_index(x=b, begin=[gh], end=[2 * gh])
        self.p = self._slice(rec.p, rec.p_var, d)

    def _slice(self, const: np.ndarray | None, var: Any, d: int) -> Any:
        if const is not None:
            return const[d].astype(self.dt)
        if var is None:
            return None
        return self.ctx.mb.gather(x=self.ctx.cast(var, self.dt), indices=np.int32(d), axis=0)

    def rows(self, mat: Any, lo: int, hi: int) -> Any:
        """Gate rows ``lo:hi`` (of a weight matrix or bias vector)."""
        if mat is None:
            return None
        if isinstance(mat, np.ndarray):
            return mat[lo:hi]
        rank = mat.rank
        return self.ctx.mb.slice_by_index(x=mat, begin=[lo] + [0] * (rank - 1), end=[hi] + [0] * (rank - 1),
                                          end_mask=[False] + [True] * (rank - 1))

    def affine(self, x: Any, w: Any, b: Any) -> Any:
        """x W^T + b: one ``linear`` for constant weights, matmul (+ add) otherwise."""
        mb = self.ctx.mb
        if isinstance(w, np.ndarray) and (b is None or isinstance(b, np.ndarray)):
            return mb.linear(x=x, weight=w, bias=b) if b is not None else mb.linear(x=x, weight=w)
        out = mb.matmul(x=x, y=w, transpose_y=True)
        return out if b is None else mb.add(x=out, y=b)

    def act(self, x: Any, a: Activation) -> Any:
        """Clip (when set) then apply the ONNX activation ``a``."""
        if self.rec.clip is not None:
            c = self.rec.clip
            x = self.ctx.mb.clip(x=x, alpha=self.ctx.scalar_like(x, -c), beta=self.ctx.scalar_like(x, c))
        return ACTIVATIONS[a.name](self.ctx, x, a)


def _lstm_step(cell: _Cell, xw: Any, h: Any, c: Any) -> tuple[Any, Any]:
    mb, H, (f_act, g_act, h_act) = cell.ctx.mb, cell.rec.hidden, cell.rec.acts[cell.d]
    g = mb.add(x=xw, y=cell.affine(h, cell.r, cell.rb))
    gi, go, gf, gc = mb.split(x=g, num_splits=4, axis=-1)
    p = cell.p
    if p is not None:
        pi, po, pf = (cell.rows(p, k * H, (k + 1) * H) for k in range(3))
        gi = mb.add(x=gi, y=mb.mul(x=c, y=pi))
        gf = mb.add(x=gf, y=mb.mul(x=c, y=pf))
    i = cell.act(gi, f_act)
    f = mb.sub(x=cell.ctx.scalar_like(i, 1), y=i) if cell.rec.input_forget else cell.act(gf, f_act)
    c_new = mb.add(x=mb.mul(x=f, y=c), y=mb.mul(x=i, y=cell.act(gc, g_act)))
    if p is not None:
        go = mb.add(x=go, y=mb.mul(x=c_new, y=po))
    h_new = mb.mul(x=cell.act(go, f_act), y=ACTIVATIONS[h_act.name](cell.ctx, c_new, h_act))
    return h_new, c_new


def _gru_step(cell: _Cell, xw: Any, h: Any) -> Any:
    mb, H, (f_act, g_act) = cell.ctx.mb, cell.rec.hidden, cell.rec.acts[cell.d]
    xz, xr, xh = mb.split(x=xw, num_splits=3, axis=-1)
    hzr = cell.affine(h, cell.rows(cell.r, 0, 2 * H), cell.rows(cell.rb, 0, 2 * H))
    hz, hr = mb.split(x=hzr, num_splits=2, axis=-1)
    z = cell.act(mb.add(x=xz, y=hz), f_act)
    r = cell.act(mb.add(x=xr, y=hr), f_act)
    r_h, rb_h = cell.rows(cell.r, 2 * H, 3 * H), cell.rows(cell.rb, 2 * H, 3 * H)
    if cell.rec.linear_before_reset:  # h~ = g(x W_h + Wb_h + r (.) (h R_h + Rb_h))
        hh = mb.mul(x=r, y=cell.affine(h, r_h, rb_h))
    else:  # h~ = g(x W_h + Wb_h + (r (.) h) R_h + Rb_h)
        hh = cell.affine(mb.mul(x=r, y=h), r_h, rb_h)
    cand = cell.act(mb.add(x=xh, y=hh), g_act)
    # (1 - z) h~ + z h  ==  h~ + z (h - h~): three ops instead of four.
    return mb.add(x=cand, y=mb.mul(x=z, y=mb.sub(x=h, y=cand)))


def _rnn_step(cell: _Cell, xw: Any, h: Any) -> Any:
    g = cell.ctx.mb.add(x=xw, y=cell.affine(h, cell.r, cell.rb))
    return cell.act(g, cell.rec.acts[cell.d][0])


def _initial(ctx: LowerContext, rec: Recurrence, state: Any, d: int) -> Any:
    """Direction ``d``'s initial state as ``[1, batch, H]``."""
    from pipeline.lowering.ops.recurrent import zeros_state

    if state is None:
        return ctx.mb.expand_dims(x=zeros_state(ctx, rec, rec.hidden, rec.dtype), axes=[0])
    return ctx.mb.slice_by_index(x=state, begin=[d, 0, 0], end=[d + 1, 0, 0], end_mask=[False, True, True])


def _masks(ctx: LowerContext, rec: Recurrence, seq: int) -> list[Any] | None:
    """Per step ``[1, batch, 1]`` bool masks ``t < sequence_lens[b]`` (None: no masking)."""
    from pipeline.lowering.ops.recurrent import _uniform_lengths

    if _uniform_lengths(ctx, rec):
        return None
    lens = ctx.value_of(rec.seq_lens)
    if lens is not None:
        return [ctx.const((np.arange(seq)[t] < lens.astype(np.int64)).reshape(1, -1, 1)) for t in range(seq)]
    lens_var = ctx.mb.reshape(x=ctx.cast(rec.seq_lens, np.int32), shape=[1, -1, 1])
    return [ctx.mb.less(x=np.int32(t), y=lens_var) for t in range(seq)]


def _direction(ctx: LowerContext, rec: Recurrence, d: int, x: Any) -> tuple[Any, Any, Any]:
    """Run direction ``d``; returns Y ``[seq, batch, H]``, h and c ``[batch, H]`` (c for LSTM)."""
    mb, seq = ctx.mb, rec.seq_len
    assert seq is not None
    cell = _Cell(ctx, rec, d)
    reverse = rec.directions[d] == "reverse"
    lens = None if rec.seq_lens is None else ctx.cast(rec.seq_lens, np.int32)
    masks = _masks(ctx, rec, seq)
    if reverse and masks is not None:  # reverse each batch entry within its own length
        x = mb.reverse_sequence(x=x, lengths=lens, seq_axis=0, batch_axis=1)
    xw = cell.affine(x, cell.w, cell.wb)
    steps = [xw] if seq == 1 else list(mb.split(x=xw, num_splits=seq, axis=0))
    h = _initial(ctx, rec, rec.h0 if rec.h0 is None else ctx.cast(rec.h0, rec.dtype), d)
    c = _initial(ctx, rec, rec.c0 if rec.c0 is None else ctx.cast(rec.c0, rec.dtype), d) if rec.op == "LSTM" else None
    order = range(seq - 1, -1, -1) if reverse and masks is None else range(seq)
    outs: dict[int, Any] = {}
    zero = None
    for t in order:
        if rec.op == "LSTM":
            h_new, c_new = _lstm_step(cell, steps[t], h, c)
        elif rec.op == "GRU":
            h_new, c_new = _gru_step(cell, steps[t], h), None
        else:
            h_new, c_new = _rnn_step(cell, steps[t], h), None
        if masks is not None:
            zero = zero if zero is not None else ctx.const(np.zeros((1, 1, 1), rec.dtype))
            outs[t] = mb.select(cond=masks[t], a=h_new, b=zero) if rec.want[0] else None
            h = mb.select(cond=masks[t], a=h_new, b=h)
            c = None if c_new is None else mb.select(cond=masks[t], a=c_new, b=c)
        else:
            outs[t], h, c = h_new, h_new, c_new
    y = None
    if rec.want[0]:
        y = outs[0] if seq == 1 else mb.concat(values=[outs[t] for t in range(seq)], axis=0)
        if reverse and masks is not None:
            y = mb.reverse_sequence(x=y, lengths=lens, seq_axis=0, batch_axis=1)
    h_last = mb.squeeze(x=h, axes=[0])
    c_last = None if c is None else mb.squeeze(x=c, axes=[0])
    return y, h_last, c_last


def lower_unrolled(ctx: LowerContext, node: Node, rec: Recurrence, blockers: list[str]) -> tuple[Any, ...]:
    """The whole node as an unrolled composite; raises when the sequence length is dynamic."""
    from pipeline.lowering.ops.recurrent import onnx_outputs

    if rec.seq_len is None:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: needs the unrolled composite ({'; '.join(blockers)}) but the "
            "sequence length is only known at run time; export with a fixed sequence length "
            "(--shapes) or use MIL-supported cell options"
        )
    if rec.dtype == np.float16 and rec.op == "LSTM" and rec.seq_len > 64:
        ctx.warn(f"{node.describe()}: fp16 unrolled LSTM over {rec.seq_len} steps may drift")
    ys, hs, cs = [], [], []
    for d in range(len(rec.directions)):
        y, h, c = _direction(ctx, rec, d, rec.x)
        ys.append(y)
        hs.append(h)
        cs.append(c)
    return onnx_outputs(ctx, rec, ys, hs, cs if rec.op == "LSTM" else [])
