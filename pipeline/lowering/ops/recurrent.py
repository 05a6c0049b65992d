"""Recurrent layers: LSTM, GRU, RNN.

ONNX and MIL describe the same cells with different gate orders and tensor layouts, so the
native path reorders the (constant) weights at conversion time and reshapes the outputs:

* ONNX gates: LSTM ``i o f c``, GRU ``z r h``; MIL gates: lstm ``i f o z``, gru ``r o z``.
  ONNX peepholes ``i o f`` become MIL's ``i f o``.
* ONNX ``Y`` is ``[seq, num_directions, batch, hidden]`` (``layout=1``: batch first), ``Y_h`` /
  ``Y_c`` are ``[num_directions, batch, hidden]``; MIL returns ``[seq, batch, D*hidden]`` and
  ``[batch, D*hidden]``.
* MIL's ``reverse`` direction emits its output sequence in processing order, so ``Y`` of a
  reverse pass is flipped back onto the input time steps.

Anything MIL's cells cannot express (activations outside MIL's set, ``clip`` (ONNX clips the
gate pre-activations, MIL the cell state), ``input_forget``, unequal ``sequence_lens``, dynamic
weights, GRU ``linear_before_reset`` below iOS18) goes to the unrolled composite in
:mod:`pipeline.lowering.ops.recurrent_unrolled`.

Spec changes read: LSTM/GRU/RNN 7 (current attributes and inputs), 14 (``layout``), 22 (types
only); GRU 3 had a ``linear_before_reset`` default of 0 too.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.ops import recurrent_unrolled as unrolled
from pipeline.lowering.registry import onnx_op

log = logging.getLogger(__name__)

#: Per op: number of gates, activations per direction, and the defaults of ``activations``.
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
_DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}
#: ONNX gate index of each MIL gate position.
_MIL_GATE_ORDER = {"LSTM": [0, 2, 1, 3], "GRU": [1, 2, 0], "RNN": [0]}

#: Activations that take alpha / beta from ``activation_alpha`` / ``activation_beta``, with the
#: defaults of the corresponding ONNX operators.
_ALPHA_DEFAULT = {"affine": 1.0, "leakyrelu": 0.01, "thresholdedrelu": 1.0, "scaledtanh": 1.0,
                  "hardsigmoid": 0.2, "elu": 1.0}
_BETA_DEFAULT = {"affine": 0.0, "scaledtanh": 1.0, "hardsigmoid": 0.5}


@dataclasses.dataclass
class Activation:
    """One ONNX recurrent activation: lower-case name and its alpha/beta (None when unused)."""

    name: str
    alpha: float | None = None
    beta: float | None = None

    def mil_name(self) -> str | None:
        """The MIL cell activation with identical math, or None (composite needed)."""
        if self.name in ("sigmoid", "tanh", "relu"):
            return self.name
        if self.name == "hardsigmoid" and (self.alpha, self.beta) == (0.2, 0.5):
            return "hard_sigmoid"
        if self.name == "affine" and (self.alpha, self.beta) == (1.0, 0.0):
            return "linear"
        if self.name == "scaledtanh" and (self.alpha, self.beta) == (1.0, 1.0):
            return "tanh"
        return None


@dataclasses.dataclass
class Recurrence:
    """Everything about one ONNX recurrent node, normalized to ``layout=0`` and numpy weights.

    ``w``/``r``/``b`` hold the ONNX tensors (``[D, G*H, I]``, ``[D, G*H, H]``, ``[D, 2*G*H]``);
    ``None`` when the input is computed at run time (``w_var``/``r_var``/``b_var`` then hold it).
    """

    op: str
    hidden: int
    directions: list[str]
    acts: list[list[Activation]]
    x: Any
    w: np.ndarray | None
    r: np.ndarray | None
    b: np.ndarray | None
    p: np.ndarray | None
    w_var: Any
    r_var: Any
    b_var: Any
    p_var: Any
    h0: Any
    c0: Any
    seq_lens: Any
    clip: float | None
    input_forget: bool
    linear_before_reset: bool
    layout: int
    dtype: np.dtype
    want: list[bool]

    @property
    def gates(self) -> int:
        return _GATES[self.op]

    @property
    def seq_len(self) -> int | None:
        dim = self.x.shape[0]
        return int(dim) if isinstance(dim, (int, np.integer)) else None


def _activations(node: Node, op: str, n_dirs: int) -> list[list[Activation]]:
    names = node.attrs.get("activations") or _DEFAULT_ACTS[op] * n_dirs
    per_dir = len(_DEFAULT_ACTS[op])
    if len(names) == per_dir and n_dirs == 2:
        names = list(names) * 2
    if not node.has_attr("activations") or (len(names) == 2 * per_dir and n_dirs == 1):
        # RNN's schema default lists two Tanh (one per direction of a bidirectional layer).
        names = list(names)[: per_dir * n_dirs] if len(names) >= per_dir * n_dirs else _DEFAULT_ACTS[op] * n_dirs
    if len(names) != per_dir * n_dirs:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: {len(names)} activations given, the spec needs "
            f"{per_dir * n_dirs}; fix the model's 'activations' attribute"
        )
    alphas = list(node.attrs.get("activation_alpha") or [])
    betas = list(node.attrs.get("activation_beta") or [])
    acts = []
    for raw in names:
        key = str(raw).lower()
        alpha = alphas.pop(0) if key in _ALPHA_DEFAULT and alphas else _ALPHA_DEFAULT.get(key)
        beta = betas.pop(0) if key in _BETA_DEFAULT and betas else _BETA_DEFAULT.get(key)
        if key not in unrolled.ACTIVATIONS:
            raise UnsupportedOpError(
                f"lower: {node.describe()}: activation {raw!r} is not an ONNX recurrent activation; "
                f"use one of {sorted(unrolled.ACTIVATIONS)}"
            )
        acts.append(Activation(key, alpha, beta))
    return [acts[d * per_dir : (d + 1) * per_dir] for d in range(n_dirs)]


def parse(ctx: LowerContext, node: Node) -> Recurrence:
    """Read an LSTM/GRU/RNN node; ``layout=1`` inputs are transposed to ``layout=0`` here."""
    op = node.op_type
    direction = str(node.attrs.get("direction", "forward"))
    dirs = {"forward": ["forward"], "reverse": ["reverse"], "bidirectional": ["forward", "reverse"]}
    if direction not in dirs:
        raise UnsupportedOpError(
            f"lower: {node.describe()}: direction {direction!r} is not forward/reverse/bidirectional"
        )
    layout = int(node.attrs.get("layout", 0))
    x, h0, c0 = node.input(0), node.input(5), node.input(6) if op == "LSTM" else None
    if layout == 1:  # batch-major [batch, seq, I] and states [batch, D, H]
        x = ctx.mb.transpose(x=x, perm=[1, 0, 2])
        h0 = None if h0 is None else ctx.mb.transpose(x=h0, perm=[1, 0, 2])
        c0 = None if c0 is None else ctx.mb.transpose(x=c0, perm=[1, 0, 2])
    hidden = node.attrs.get("hidden_size")
    r_shape = node.input(2).shape
    if hidden is None:
        hidden = int(r_shape[-1])
    clip = node.attrs.get("clip")
    p_idx = 7 if op == "LSTM" else None
    want = [bool(n) for n in node.output_names] + [False] * 3
    return Recurrence(
        op=op, hidden=int(hidden), directions=dirs[direction],
        acts=_activations(node, op, len(dirs[direction])), x=x,
        w=node.const_input(1), r=node.const_input(2), b=node.const_input(3),
        p=node.const_input(p_idx) if p_idx else None,
        w_var=node.input(1), r_var=node.input(2), b_var=node.input(3),
        p_var=node.input(p_idx) if p_idx else None,
        h0=h0, c0=c0, seq_lens=node.input(4), clip=None if clip is None else float(clip),
        input_forget=bool(node.attrs.get("input_forget", 0)),
        linear_before_reset=bool(node.attrs.get("linear_before_reset", 0)),
        layout=layout, dtype=ctx.np_dtype(x), want=want[:3],
    )


def _uniform_lengths(ctx: LowerContext, rec: Recurrence) -> bool:
    """True when ``sequence_lens`` is absent or a constant equal to the sequence length."""
    if rec.seq_lens is None:
        return True
    lens = ctx.value_of(rec.seq_lens)
    return lens is not None and rec.seq_len is not None and bool(np.all(lens == rec.seq_len))


def native_blockers(ctx: LowerContext, rec: Recurrence) -> list[str]:
    """Why MIL's own cell cannot compute this node (empty: it can)."""
    why = []
    if rec.w is None or rec.r is None or (rec.b_var is not None and rec.b is None):
        why.append("weights computed at run time (MIL cells take constant weights)")
    if rec.p_var is not None and rec.p is None:
        why.append("peepholes computed at run time")
    if any(a.mil_name() is None for acts in rec.acts for a in acts):
        why.append("an activation outside MIL's cell activations")
    if rec.op == "LSTM" and len(rec.directions) == 2 and rec.acts[0] != rec.acts[1]:
        why.append("different activations per direction")
    if rec.clip is not None:
        why.append("clip (ONNX clips gate inputs, MIL the cell state)")
    if rec.input_forget:
        why.append("input_forget (coupled gates)")
    if not _uniform_lengths(ctx, rec):
        why.append("sequence_lens that differ from the sequence length")
    return why


# -- weights in MIL's layout --------------------------------------------------------------------
def _reorder(mat: np.ndarray, op: str, hidden: int) -> np.ndarray:
    """Rows of a gate-stacked ONNX tensor (``[G*H, ...]``) in MIL's gate order."""
    blocks = [mat[g * hidden : (g + 1) * hidden] for g in range(_GATES[op])]
    return np.concatenate([blocks[g] for g in _MIL_GATE_ORDER[op]], axis=0)


def _biases(rec: Recurrence, d: int) -> tuple[np.ndarray, np.ndarray]:
    width = rec.gates * rec.hidden
    if rec.b is None:
        zeros = np.zeros(width, rec.dtype)
        return zeros, zeros
    return rec.b[d, :width].astype(rec.dtype), rec.b[d, width:].astype(rec.dtype)


# -- state and output layouts ---------------------------------------------------------------------
def zeros_state(ctx: LowerContext, rec: Recurrence, width: int, dtype: np.dtype) -> Any:
    """A ``[batch, width]`` zero state (``fill`` when the batch is only known at run time)."""
    batch = rec.x.shape[1]
    if isinstance(batch, (int, np.integer)):
        return ctx.const(np.zeros((int(batch), width), dtype))
    shape = ctx.mb.concat(values=[ctx.mb.slice_by_size(x=ctx.mb.shape(x=rec.x), begin=[1], size=[1]),
                                  ctx.const(np.array([width], np.int32))], axis=0)
    return ctx.mb.fill(shape=shape, value=dtype.type(0))


def _mil_state(ctx: LowerContext, rec: Recurrence, state: Any, dtype: np.dtype) -> Any:
    """ONNX ``[D, batch, H]`` state -> MIL ``[batch, D*H]`` (zeros when omitted)."""
    n_dirs = len(rec.directions)
    if state is None:
        return zeros_state(ctx, rec, n_dirs * rec.hidden, dtype)
    state = ctx.cast(state, dtype)
    if n_dirs == 1:
        return ctx.mb.squeeze(x=state, axes=[0])
    both = ctx.mb.transpose(x=state, perm=[1, 0, 2])
    return ctx.mb.reshape(x=both, shape=[-1, n_dirs * rec.hidden])


def onnx_outputs(
    ctx: LowerContext, rec: Recurrence, ys: list[Any], hs: list[Any], cs: list[Any]
) -> tuple[Any, Any, Any]:
    """Per-direction ``[seq, batch, H]`` / ``[batch, H]`` values -> ONNX Y, Y_h, Y_c."""
    mb = ctx.mb
    batch_first = rec.layout == 1

    def stack(vals: list[Any], seq_axis: bool) -> Any:
        if seq_axis:  # [seq, D, batch, H] or [batch, seq, D, H]
            if batch_first:
                vals = [mb.transpose(x=v, perm=[1, 0, 2]) for v in vals]
            axis = 2 if batch_first else 1
        else:  # [D, batch, H] or [batch, D, H]
            axis = 1 if batch_first else 0
        if len(vals) == 1:
            return mb.expand_dims(x=vals[0], axes=[axis])
        return mb.stack(values=vals, axis=axis)

    y = stack(ys, True) if rec.want[0] else None
    y_h = stack(hs, False) if rec.want[1] else None
    y_c = stack(cs, False) if len(rec.want) > 2 and rec.want[2] and cs else None
    return y, y_h, y_c


def _restore(ctx: LowerContext, rec: Recurrence, vals: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(None if v is None else ctx.cast(v, rec.dtype) for v in vals)


# -- native lowerings -------------------------------------------------------------------------------
def _compute_dtype(ctx: LowerContext, rec: Recurrence) -> np.dtype:
    """fp16 cells exist from iOS17; below that an fp16 layer computes in fp32 between casts."""
    return rec.dtype if rec.dtype == np.float32 or ctx.target >= 17 else np.dtype(np.float32)


def _lstm_native(ctx: LowerContext, rec: Recurrence) -> tuple[Any, ...]:
    mb, dt, H = ctx.mb, _compute_dtype(ctx, rec), rec.hidden
    assert rec.w is not None and rec.r is not None  # native_blockers checked it
    kw: dict[str, Any] = {}
    for d, suffix in enumerate(["", "_back"][: len(rec.directions)]):
        b_w, b_r = _biases(rec, d)
        kw["weight_ih" + suffix] = _reorder(rec.w[d], "LSTM", H).astype(dt)
        kw["weight_hh" + suffix] = _reorder(rec.r[d], "LSTM", H).astype(dt)
        if rec.b is not None:
            kw["bias" + suffix] = _reorder(b_w + b_r, "LSTM", H).astype(dt)
        if rec.p is not None:
            pi, po, pf = (rec.p[d, k * H : (k + 1) * H] for k in range(3))
            kw["peephole" + suffix] = np.concatenate([pi, pf, po]).astype(dt)
    acts = [a.mil_name() for a in rec.acts[0]]
    direction = "bidirectional" if len(rec.directions) == 2 else rec.directions[0]
    y, h, c = mb.lstm(
        x=ctx.cast(rec.x, dt), initial_h=_mil_state(ctx, rec, rec.h0, dt),
        initial_c=_mil_state(ctx, rec, rec.c0, dt), direction=direction,
        output_sequence=rec.want[0], recurrent_activation=acts[0], cell_activation=acts[1],
        activation=acts[2], **kw,
    )
    if len(rec.directions) == 1:
        if direction == "reverse" and rec.want[0]:
            y = mb.reverse(x=y, axes=[0])
        return _restore(ctx, rec, onnx_outputs(ctx, rec, [y], [h], [c]))
    # Both directions side by side ([..., 2H]): reshape + transpose to ONNX's direction axis.
    # Exporters undo exactly this (Transpose + Reshape), which coremltools' passes then cancel.
    y_out = None
    seq, batch = (d if isinstance(d, (int, np.integer)) else -1 for d in y.shape[:2])
    if rec.want[0] and -1 in (seq, batch) and seq == batch:  # both dims dynamic: split + stack
        y_only = dataclasses.replace(rec, want=[True, False, False])
        y_out = onnx_outputs(ctx, y_only, list(mb.split(x=y, num_splits=2, axis=2)), [], [])[0]
    elif rec.want[0]:
        y4 = mb.reshape(x=y, shape=[int(seq), int(batch), 2, H])
        y_out = mb.transpose(x=y4, perm=[1, 0, 2, 3] if rec.layout else [0, 2, 1, 3])
    states = []
    for want, s in ((rec.want[1], h), (rec.want[2], c)):
        s3 = mb.reshape(x=s, shape=[-1, 2, H]) if want else None
        states.append(None if s3 is None else (s3 if rec.layout else mb.transpose(x=s3, perm=[1, 0, 2])))
    return _restore(ctx, rec, (y_out, *states))


def _single_direction_native(ctx: LowerContext, rec: Recurrence) -> tuple[Any, ...]:
    """GRU and RNN: one MIL op per direction (MIL's gru/rnn have no bidirectional mode)."""
    mb, dt, H = ctx.mb, _compute_dtype(ctx, rec), rec.hidden
    assert rec.w is not None and rec.r is not None  # native_blockers checked it
    x = ctx.cast(rec.x, dt)
    h0_all = None if rec.h0 is None else ctx.cast(rec.h0, dt)
    n_dirs = len(rec.directions)
    h0s = [None] * n_dirs if h0_all is None else (
        [mb.squeeze(x=h0_all, axes=[0])] if n_dirs == 1
        else [mb.squeeze(x=s, axes=[0]) for s in mb.split(x=h0_all, num_splits=2, axis=0)]
    )
    ys, hs = [], []
    for d, direction in enumerate(rec.directions):
        b_w, b_r = _biases(rec, d)
        h0 = h0s[d] if h0s[d] is not None else zeros_state(ctx, rec, H, dt)
        common: dict[str, Any] = {
            "x": x, "initial_h": h0, "weight_ih": _reorder(rec.w[d], rec.op, H).astype(dt),
            "weight_hh": _reorder(rec.r[d], rec.op, H).astype(dt), "direction": direction,
            "output_sequence": rec.want[0],
        }
        if rec.op == "RNN":
            y, h = mb.rnn(bias=(b_w + b_r).astype(dt), activation=rec.acts[d][0].mil_name(), **common)
        else:
            acts = {"recurrent_activation": rec.acts[d][0].mil_name(),
                    "activation": rec.acts[d][1].mil_name()}
            if rec.linear_before_reset:  # iOS18: o = act(W_o x + b_wo + r * (R_o h + b_ro))
                y, h = mb.gru(bias=_reorder(b_r, "GRU", H).astype(dt), input_bias=_reorder(b_w, "GRU", H).astype(dt),
                              reset_after=True, **acts, **common)
            else:  # o = act(W_o x + R_o (r * h) + b_wo + b_ro): one summed bias
                y, h = mb.gru(bias=_reorder(b_w + b_r, "GRU", H).astype(dt), **acts, **common)
        if direction == "reverse" and rec.want[0]:
            y = mb.reverse(x=y, axes=[0])
        ys.append(y)
        hs.append(h)
    return _restore(ctx, rec, onnx_outputs(ctx, rec, ys, hs, []))


def _lower(ctx: LowerContext, node: Node) -> tuple[Any, ...]:
    rec = parse(ctx, node)
    blockers = native_blockers(ctx, rec)
    if not blockers and rec.op == "GRU" and rec.linear_before_reset:
        # PyTorch's GRU form.  iOS18's gru(reset_after=True) is one op; an unrolled composite
        # would cost ~14 ops per step, so the target is raised (or the user is told to).
        ctx.require_target(18, "has a GRU with linear_before_reset=1 (MIL gru reset_after)")
    if blockers:
        log.debug("%s: unrolled composite because of %s", node.describe(), "; ".join(blockers))
        outs = unrolled.lower_unrolled(ctx, node, rec, blockers)
    elif rec.op == "LSTM":
        outs = _lstm_native(ctx, rec)
    else:
        outs = _single_direction_native(ctx, rec)
    return outs[: len(node.output_names)]


@onnx_op("LSTM", since=7)
def lstm(ctx: LowerContext, node: Node) -> Any:
    """c = f*c + i*g(x W_c + h R_c + b_c); h = o*h(c), gates i, o, f by f(.).  MIL: lstm.

    Limits: activations outside MIL's set, clip, input_forget or unequal sequence_lens become
    an unrolled composite (static sequence length only).
    """
    return _lower(ctx, node)


@onnx_op("GRU", since=7)
def gru(ctx: LowerContext, node: Node) -> Any:
    """h = (1-z)*h~ + z*h with z, r = f(.), h~ = g(.).  MIL: gru (reset_after on iOS18 for lbr=1).

    Limits: linear_before_reset=1 below iOS18 and non-MIL activations become an unrolled
    composite (static sequence length only).
    """
    return _lower(ctx, node)


@onnx_op("RNN", since=7)
def rnn(ctx: LowerContext, node: Node) -> Any:
    """h = f(x W^T + h R^T + Wb + Rb).  MIL: rnn (one per direction).

    Limits: non-MIL activations, clip or unequal sequence_lens become an unrolled composite.
    """
    return _lower(ctx, node)
