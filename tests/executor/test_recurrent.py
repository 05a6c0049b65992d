"""Executor kernels of MIL lstm / gru / rnn against torch.nn.LSTM / GRU / RNN (weights moved into
MIL's layout as the MIL docs describe) and, where torch has no twin, a float64 loop from the doc."""

from __future__ import annotations

import coremltools as ct
import numpy as np
import pytest
import torch
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

from tests.executor.support import run, tol

S, B, I, H = 5, 2, 3, 4
FLOATS = [(np.float32, types.fp32, ct.target.iOS15), (np.float16, types.fp16, ct.target.iOS17)]
# Recurrences compound fp16 rounding over the sequence; compare to an fp32 reference at a
# looser bound than one fp16 op (here: 5 steps of a few fp16 ulps each).
RNN_FP16 = {"rtol": 1e-2, "atol": 1e-2}


def _tol(np_dt: type) -> dict[str, float]:
    return RNN_FP16 if np_dt == np.float16 else {"rtol": 1e-5, "atol": 1e-5}


def _ifgo_to_ifoz(w: torch.Tensor) -> np.ndarray:
    """torch stacks LSTM gates i, f, g(cell), o; MIL stacks i, f, o, z(cell)."""
    i, f, g, o = w.detach().numpy().reshape(4, -1, *w.shape[1:])
    return np.concatenate([i, f, o, g])


def _rzn_to_roz(w: torch.Tensor) -> np.ndarray:
    """torch stacks GRU gates r, z, n; MIL stacks r, o(new), z."""
    r, z, n = w.detach().numpy().reshape(3, -1, *w.shape[1:])
    return np.concatenate([r, n, z])


def _inputs(np_dt: type, hid_dirs: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(S, B, I, generator=g)
    h0 = torch.randn(hid_dirs, B, H, generator=g)
    c0 = torch.randn(hid_dirs, B, H, generator=g)
    return x, h0, c0


@pytest.mark.parametrize("np_dt,mil_dt,opset", FLOATS)
@pytest.mark.parametrize("direction", ["forward", "reverse"])
@pytest.mark.parametrize("output_sequence", [True, False])
def test_lstm_unidirectional(np_dt, mil_dt, opset, direction: str, output_sequence: bool) -> None:
    torch.manual_seed(0)
    ref_net = torch.nn.LSTM(I, H)
    x, h0, c0 = _inputs(np_dt)
    x, h0, c0 = (t.to(torch.float16).to(torch.float32) if np_dt == np.float16 else t for t in (x, h0, c0))
    w_ih, w_hh = _ifgo_to_ifoz(ref_net.weight_ih_l0), _ifgo_to_ifoz(ref_net.weight_hh_l0)
    bias = _ifgo_to_ifoz(ref_net.bias_ih_l0 + ref_net.bias_hh_l0)

    @mb.program(input_specs=[mb.TensorSpec((S, B, I), mil_dt), mb.TensorSpec((B, H), mil_dt),
                             mb.TensorSpec((B, H), mil_dt)], opset_version=opset)
    def prog(x, h, c):
        return mb.lstm(x=x, initial_h=h, initial_c=c, weight_ih=w_ih.astype(np_dt),
                       weight_hh=w_hh.astype(np_dt), bias=bias.astype(np_dt), direction=direction,
                       output_sequence=output_sequence)

    xs = torch.flip(x, [0]) if direction == "reverse" else x  # MIL emits in processing order
    with torch.no_grad():
        ref_out, (ref_h, ref_c) = ref_net(xs, (h0, c0))
    if not output_sequence:
        ref_out = ref_out[-1:]
    out, h, c = run(prog, x=x.numpy().astype(np_dt), h=h0[0].numpy().astype(np_dt), c=c0[0].numpy().astype(np_dt))
    assert out.dtype == np_dt and out.shape == ref_out.shape
    np.testing.assert_allclose(out, ref_out.numpy(), **_tol(np_dt))
    np.testing.assert_allclose(h, ref_h[0].numpy(), **_tol(np_dt))
    np.testing.assert_allclose(c, ref_c[0].numpy(), **_tol(np_dt))


@pytest.mark.parametrize("output_sequence", [True, False])
def test_lstm_bidirectional(output_sequence: bool) -> None:
    torch.manual_seed(1)
    ref_net = torch.nn.LSTM(I, H, bidirectional=True)
    x, h0, c0 = _inputs(np.float32, hid_dirs=2, seed=1)
    p = {k: v for k, v in ref_net.named_parameters()}
    args = {
        "weight_ih": _ifgo_to_ifoz(p["weight_ih_l0"]), "weight_hh": _ifgo_to_ifoz(p["weight_hh_l0"]),
        "bias": _ifgo_to_ifoz(p["bias_ih_l0"] + p["bias_hh_l0"]),
        "weight_ih_back": _ifgo_to_ifoz(p["weight_ih_l0_reverse"]),
        "weight_hh_back": _ifgo_to_ifoz(p["weight_hh_l0_reverse"]),
        "bias_back": _ifgo_to_ifoz(p["bias_ih_l0_reverse"] + p["bias_hh_l0_reverse"]),
    }

    @mb.program(input_specs=[mb.TensorSpec((S, B, I)), mb.TensorSpec((B, 2 * H)), mb.TensorSpec((B, 2 * H))],
                opset_version=ct.target.iOS15)
    def prog(x, h, c):
        return mb.lstm(x=x, initial_h=h, initial_c=c, direction="bidirectional",
                       output_sequence=output_sequence, **args)

    with torch.no_grad():
        ref_out, (ref_h, ref_c) = ref_net(x, (h0, c0))
    # MIL keeps both directions on the hidden axis: [B, 2H] = [forward | backward]
    both = lambda t: torch.cat([t[0], t[1]], dim=-1).numpy()
    ref_seq = ref_out.numpy() if output_sequence else both(ref_h)[None]
    out, h, c = run(prog, x=x.numpy(), h=both(h0), c=both(c0))
    np.testing.assert_allclose(out, ref_seq, **tol(np.float32))
    np.testing.assert_allclose(h, both(ref_h), **tol(np.float32))
    np.testing.assert_allclose(c, both(ref_c), **tol(np.float32))


def _np_lstm_doc(x, h, c, w_ih, w_hh, b, p, clip, acts):
    """float64 loop of the MIL lstm doc equations (ifoz gates, peephole ifo), clip on the cell."""
    ra, ca, oa = acts
    w_ih, w_hh, b, p = (a.astype(np.float64) for a in (w_ih, w_hh, b, p))
    outs = []
    for t in range(x.shape[0]):
        g = np.split(x[t] @ w_ih.T + h @ w_hh.T + b, 4, axis=-1)
        pi, pf, po = np.split(p, 3)
        i, f = ra(g[0] + c * pi), ra(g[1] + c * pf)
        c = np.clip(f * c + i * ca(g[3]), -clip, clip)
        h = ra(g[2] + c * po) * oa(c)
        outs.append(h)
    return np.stack(outs), h, c


def test_lstm_peephole_clip_activations() -> None:
    rng = np.random.default_rng(4)
    w_ih, w_hh = rng.normal(size=(4 * H, I)).astype(np.float32), rng.normal(size=(4 * H, H)).astype(np.float32)
    b, p = rng.normal(size=4 * H).astype(np.float32), rng.normal(size=3 * H).astype(np.float32)
    x, h0, c0 = rng.normal(size=(S, B, I)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    hs = lambda v: np.clip(0.2 * v + 0.5, 0, 1)

    @mb.program(input_specs=[mb.TensorSpec((S, B, I)), mb.TensorSpec((B, H)), mb.TensorSpec((B, H))],
                opset_version=ct.target.iOS15)
    def prog(x, h, c):
        return mb.lstm(x=x, initial_h=h, initial_c=c, weight_ih=w_ih, weight_hh=w_hh, bias=b,
                       peephole=p, clip=np.float32(0.7), output_sequence=True,
                       recurrent_activation="hard_sigmoid", cell_activation="relu", activation="tanh")

    ref = _np_lstm_doc(x, h0, c0, w_ih, w_hh, b, p, 0.7, (hs, lambda v: np.maximum(v, 0), np.tanh))
    outs = run(prog, x=x.astype(np.float32), h=h0.astype(np.float32), c=c0.astype(np.float32))
    for o, r in zip(outs, ref):
        np.testing.assert_allclose(o, r, rtol=1e-5, atol=1e-5)


def _np_gru_reset_before(x, h, w_ih, w_hh, b):
    """float64 loop of the iOS15 MIL gru doc: o = tanh(W_o x + R_o (r*h) + b_o), roz layout."""
    wr, wo, wz = np.split(w_ih.astype(np.float64), 3)
    rr, ro, rz = np.split(w_hh.astype(np.float64), 3)
    br, bo, bz = np.split(b.astype(np.float64), 3)
    sig = lambda v: 1 / (1 + np.exp(-v))
    outs = []
    for t in range(x.shape[0]):
        r = sig(x[t] @ wr.T + h @ rr.T + br)
        z = sig(x[t] @ wz.T + h @ rz.T + bz)
        o = np.tanh(x[t] @ wo.T + (r * h) @ ro.T + bo)
        h = (1 - z) * o + z * h
        outs.append(h)
    return np.stack(outs), h


@pytest.mark.parametrize("np_dt,mil_dt,opset", FLOATS)
@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_gru_reset_before(np_dt, mil_dt, opset, direction: str) -> None:
    rng = np.random.default_rng(5)
    w_ih, w_hh = rng.normal(size=(3 * H, I)) * 0.5, rng.normal(size=(3 * H, H)) * 0.5
    b = rng.normal(size=3 * H) * 0.5
    x, h0 = rng.normal(size=(S, B, I)).astype(np_dt), rng.normal(size=(B, H)).astype(np_dt)

    @mb.program(input_specs=[mb.TensorSpec((S, B, I), mil_dt), mb.TensorSpec((B, H), mil_dt)], opset_version=opset)
    def prog(x, h):
        return mb.gru(x=x, initial_h=h, weight_ih=w_ih.astype(np_dt), weight_hh=w_hh.astype(np_dt),
                      bias=b.astype(np_dt), direction=direction, output_sequence=True)

    xs = x[::-1] if direction == "reverse" else x
    ref_seq, ref_h = _np_gru_reset_before(xs.astype(np.float64), h0.astype(np.float64),
                                          w_ih.astype(np_dt), w_hh.astype(np_dt), b.astype(np_dt))
    out, h = run(prog, x=x, h=h0)
    assert out.dtype == np_dt
    np.testing.assert_allclose(out, ref_seq, **_tol(np_dt))
    np.testing.assert_allclose(h, ref_h, **_tol(np_dt))


@pytest.mark.parametrize("output_sequence", [True, False])
def test_gru_ios18_reset_after_matches_torch(output_sequence: bool) -> None:
    torch.manual_seed(6)
    ref_net = torch.nn.GRU(I, H)
    x, h0, _ = _inputs(np.float32, seed=6)

    @mb.program(input_specs=[mb.TensorSpec((S, B, I)), mb.TensorSpec((B, H))], opset_version=ct.target.iOS18)
    def prog(x, h):
        return mb.gru(x=x, initial_h=h, weight_ih=_rzn_to_roz(ref_net.weight_ih_l0),
                      weight_hh=_rzn_to_roz(ref_net.weight_hh_l0),
                      input_bias=_rzn_to_roz(ref_net.bias_ih_l0), bias=_rzn_to_roz(ref_net.bias_hh_l0),
                      reset_after=True, output_sequence=output_sequence)

    with torch.no_grad():
        ref_out, ref_h = ref_net(x, h0)
    out, h = run(prog, x=x.numpy(), h=h0[0].numpy())
    np.testing.assert_allclose(out, (ref_out if output_sequence else ref_out[-1:]).numpy(), **tol(np.float32))
    np.testing.assert_allclose(h, ref_h[0].numpy(), **tol(np.float32))


@pytest.mark.parametrize("np_dt,mil_dt,opset", FLOATS)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_rnn(np_dt, mil_dt, opset, activation: str, direction: str) -> None:
    torch.manual_seed(7)
    ref_net = torch.nn.RNN(I, H, nonlinearity=activation)
    x, h0, _ = _inputs(np_dt, seed=7)
    x, h0 = (t.to(torch.float16).to(torch.float32) if np_dt == np.float16 else t for t in (x, h0))
    w_ih, w_hh = ref_net.weight_ih_l0.detach().numpy(), ref_net.weight_hh_l0.detach().numpy()
    bias = (ref_net.bias_ih_l0 + ref_net.bias_hh_l0).detach().numpy()

    @mb.program(input_specs=[mb.TensorSpec((S, B, I), mil_dt), mb.TensorSpec((B, H), mil_dt)], opset_version=opset)
    def prog(x, h):
        return mb.rnn(x=x, initial_h=h, weight_ih=w_ih.astype(np_dt), weight_hh=w_hh.astype(np_dt),
                      bias=bias.astype(np_dt), direction=direction, activation=activation.upper(),
                      output_sequence=False)

    xs = torch.flip(x, [0]) if direction == "reverse" else x
    with torch.no_grad():
        ref_out, ref_h = ref_net(xs, h0)
    out, h = run(prog, x=x.numpy().astype(np_dt), h=h0[0].numpy().astype(np_dt))
    assert out.shape == (1, B, H) and out.dtype == np_dt
    np.testing.assert_allclose(out, ref_out[-1:].numpy(), **_tol(np_dt))
    np.testing.assert_allclose(h, ref_h[0].numpy(), **_tol(np_dt))
