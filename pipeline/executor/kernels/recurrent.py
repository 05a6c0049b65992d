"""Kernels of MIL's recurrent ops (coremltools defs: iOS15/17/18 recurrent.py).

Ops: lstm, gru (iOS18 adds reset_after and input_bias), rnn.  iOS17 only adds fp16, which
these kernels honour by computing in the input dtype.

Layouts (MIL docs): x is [seq, batch, I]; lstm gates are stacked [input, forget, output, cell]
("ifoz"), peephole [input, forget, output]; gru gates [reset, output(new), update] ("roz").
``reverse`` walks the sequence from the end and emits the output sequence in processing order;
``bidirectional`` (lstm only) emits both halves aligned with the input time steps, forward
hidden units first.  Named activations follow the MIL activation ops' defaults:
hard_sigmoid = clip(0.2 x + 0.5, 0, 1), scaled_tanh = tanh, linear = identity.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.errors import ExecutorError
from pipeline.executor.kernels.registry import IOS15, IOS18, mil_kernel

log = logging.getLogger(__name__)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-v))).astype(v.dtype)


_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "scaled_tanh": np.tanh,
    "relu": lambda v: np.maximum(v, 0),
    "linear": lambda v: v,
    "hard_sigmoid": lambda v: np.clip(0.2 * v + 0.5, 0, 1).astype(v.dtype),
    "sigmoid_hard": lambda v: np.clip(0.2 * v + 0.5, 0, 1).astype(v.dtype),
}


def _act(name: Any) -> Callable[[np.ndarray], np.ndarray]:
    key = str(name).lower()
    if key not in _ACTIVATIONS:
        raise ExecutorError(
            f"execute: recurrent activation {name!r} is unknown; use one of {sorted(_ACTIVATIONS)}"
        )
    return _ACTIVATIONS[key]


def _vec(v: Any, n: int, dtype: np.dtype) -> np.ndarray:
    return np.zeros(n, dtype=dtype) if v is None else np.asarray(v, dtype=dtype).reshape(n)


def _lstm_pass(
    xs: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
    bias: np.ndarray, peep: np.ndarray, acts: tuple[Callable[..., np.ndarray], ...], clip: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One direction over xs in the given order; returns (hidden per step, last h, last c)."""
    hid = w_hh.shape[1]
    rec, cell, out_act = acts
    p_i, p_f, p_o = peep[:hid], peep[hid : 2 * hid], peep[2 * hid :]
    x_part = xs @ w_ih.T + bias  # [s, b, 4H]: the input projection of every step at once
    w_hh_t = w_hh.T
    steps = np.empty(xs.shape[:2] + (hid,), dtype=xs.dtype)
    for t in range(xs.shape[0]):
        g = x_part[t] + h @ w_hh_t
        i = rec(g[:, :hid] + c * p_i)
        f = rec(g[:, hid : 2 * hid] + c * p_f)
        z = cell(g[:, 3 * hid :])
        c = f * c + i * z
        if clip is not None:
            c = np.clip(c, -clip, clip)
        o = rec(g[:, 2 * hid : 3 * hid] + c * p_o)
        h = o * out_act(c)
        steps[t] = h
    return steps, h, c


@mil_kernel("lstm", since=IOS15)
def lstm(
    x: np.ndarray, initial_h: np.ndarray, initial_c: np.ndarray, weight_ih: np.ndarray,
    weight_hh: np.ndarray, bias: Any = None, peephole: Any = None, weight_ih_back: Any = None,
    weight_hh_back: Any = None, bias_back: Any = None, peephole_back: Any = None,
    direction: Any = "forward", output_sequence: Any = False, recurrent_activation: Any = "sigmoid",
    cell_activation: Any = "tanh", activation: Any = "tanh", clip: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """c = f*c + i*z (clipped to +-clip), h = o*act(c); gates ifoz, peepholes on i, f (old c), o (new c)."""
    dt = x.dtype
    hid = weight_hh.shape[1]
    acts = (_act(recurrent_activation), _act(cell_activation), _act(activation))
    clip_v = None if clip is None else dt.type(clip)
    fwd = (weight_ih.astype(dt), weight_hh.astype(dt), _vec(bias, 4 * hid, dt), _vec(peephole, 3 * hid, dt))
    h0, c0 = initial_h.astype(dt), initial_c.astype(dt)
    mode = str(direction)
    if mode in ("forward", "reverse"):
        xs = x[::-1] if mode == "reverse" else x
        steps, h, c = _lstm_pass(xs, h0, c0, *fwd, acts, clip_v)
        out = steps if bool(output_sequence) else steps[-1:]
        return out, h, c
    if mode != "bidirectional":
        raise ExecutorError(f"execute: lstm direction {direction!r} is not forward/reverse/bidirectional")
    back = (
        np.asarray(weight_ih_back, dt), np.asarray(weight_hh_back, dt),
        _vec(bias_back, 4 * hid, dt), _vec(peephole_back, 3 * hid, dt),
    )
    sf, hf, cf = _lstm_pass(x, h0[:, :hid], c0[:, :hid], *fwd, acts, clip_v)
    sb, hb, cb = _lstm_pass(x[::-1], h0[:, hid:], c0[:, hid:], *back, acts, clip_v)
    h, c = np.concatenate([hf, hb], -1), np.concatenate([cf, cb], -1)
    out = np.concatenate([sf, sb[::-1]], -1) if bool(output_sequence) else h[None]
    return out, h, c


def _gru(
    x: np.ndarray, initial_h: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray,
    bias: Any, input_bias: Any, direction: Any, output_sequence: Any,
    recurrent_activation: Any, activation: Any, reset_after: bool,
) -> tuple[np.ndarray, np.ndarray]:
    dt = x.dtype
    hid = weight_hh.shape[1]
    rec, act = _act(recurrent_activation), _act(activation)
    b_h, b_i = _vec(bias, 3 * hid, dt), _vec(input_bias, 3 * hid, dt)
    xs = x[::-1] if str(direction) == "reverse" else x
    x_part = xs @ weight_ih.astype(dt).T + b_i  # [s, b, 3H] in roz order
    w_r, w_o, w_z = (weight_hh[k * hid : (k + 1) * hid].astype(dt).T for k in range(3))
    bh_r, bh_o, bh_z = b_h[:hid], b_h[hid : 2 * hid], b_h[2 * hid :]
    h = initial_h.astype(dt)
    steps = np.empty(xs.shape[:2] + (hid,), dtype=dt)
    for t in range(xs.shape[0]):
        xr, xo, xz = x_part[t, :, :hid], x_part[t, :, hid : 2 * hid], x_part[t, :, 2 * hid :]
        r = rec(xr + h @ w_r + bh_r)
        z = rec(xz + h @ w_z + bh_z)
        if reset_after:
            o = act(xo + r * (h @ w_o + bh_o))
        else:
            o = act(xo + (r * h) @ w_o + bh_o)
        h = (1 - z) * o + z * h
        steps[t] = h
    return (steps if bool(output_sequence) else steps[-1:]), h


@mil_kernel("gru", since=IOS15)
def gru(
    x: np.ndarray, initial_h: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray,
    bias: Any = None, direction: Any = "forward", output_sequence: Any = False,
    recurrent_activation: Any = "sigmoid", activation: Any = "tanh",
) -> tuple[np.ndarray, np.ndarray]:
    """r, z = ract(Wx + Rh + b); o = act(W_o x + R_o (r*h) + b_o); h = (1-z)*o + z*h."""
    return _gru(
        x, initial_h, weight_ih, weight_hh, bias, None, direction, output_sequence,
        recurrent_activation, activation, reset_after=False,
    )


@mil_kernel("gru", since=IOS18)
def gru_v18(
    x: np.ndarray, initial_h: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray,
    bias: Any = None, direction: Any = "forward", output_sequence: Any = False,
    recurrent_activation: Any = "sigmoid", activation: Any = "tanh", reset_after: Any = False,
    input_bias: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """iOS18: input_bias adds to Wx; reset_after gives o = act(W_o x + b_io + r*(R_o h + b_o))."""
    return _gru(
        x, initial_h, weight_ih, weight_hh, bias, input_bias, direction, output_sequence,
        recurrent_activation, activation, reset_after=bool(reset_after),
    )


@mil_kernel("rnn", since=IOS15)
def rnn(
    x: np.ndarray, initial_h: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray,
    bias: Any = None, direction: Any = "forward", output_sequence: Any = False,
    activation: Any = "tanh",
) -> tuple[np.ndarray, np.ndarray]:
    """h = act(W_ih x + W_hh h + bias)."""
    dt = x.dtype
    hid = weight_hh.shape[1]
    act = _act(activation)
    xs = x[::-1] if str(direction) == "reverse" else x
    x_part = xs @ weight_ih.astype(dt).T + _vec(bias, hid, dt)
    w_hh_t = weight_hh.astype(dt).T
    h = initial_h.astype(dt)
    steps = np.empty(xs.shape[:2] + (hid,), dtype=dt)
    for t in range(xs.shape[0]):
        h = act(x_part[t] + h @ w_hh_t)
        steps[t] = h
    return (steps if bool(output_sequence) else steps[-1:]), h
