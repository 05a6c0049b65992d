"""Signal processing: DFT, STFT, HannWindow, HammingWindow, BlackmanWindow, MelWeightMatrix.

Core ML has no FFT.  A DFT of static length N is a product with an N x K matrix of cosines and
sines computed at conversion time (float64, rounded once to the signal's type): real and
imaginary parts interleave so that one ``linear`` op (a fully connected layer, Neural Engine
friendly) computes the complex product, between two reshapes.  Zero padding or truncation to
``dft_length`` is folded into the matrix (missing rows are zero), so no pad/slice ops are
emitted.  STFT is the same matrix, windowed, applied as a strided 1-D ``conv`` (one op for all
frames).  Cost is O(N*K) per transform instead of O(N log N): right for the frame sizes of
audio front ends (<= 2048), poor for very long transforms.

Windows and the mel matrix depend only on constant inputs and fold to constants.

Spec changes read: DFT 17 (axis attribute, dft_length input), 20 (axis becomes input 2,
default -2); STFT 17; Hann/Hamming/BlackmanWindow 17; MelWeightMatrix 17.
Limits: run-time lengths, axes, windows or sizes are unsupported (the matrices are constants).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.dtypes import legalize_array, onnx_to_numpy
from pipeline.lowering.node import Node
from pipeline.lowering.registry import composite_op

log = logging.getLogger(__name__)


def _const_int(node: Node, i: int, what: str, default: int | None = None) -> int:
    """Constant scalar input ``i``; ``default`` when omitted (required when None)."""
    if not node.has_input(i):
        if default is None:
            raise UnsupportedOpError(f"lower: {node.describe()}: {what} is missing; fix the model")
        return default
    val = node.const_input(i)
    if val is None:
        raise UnsupportedOpError(f"lower: {node.describe()}: {what} is computed at run time; Core ML needs a constant")
    return int(val.reshape(-1)[0])


def dft_matrix(n_in: int, length: int, bins: int, complex_in: bool, inverse: bool) -> np.ndarray:
    """W with x[n_in * c] @ W = y[bins * 2] (c = 2 for complex input, interleaved re/im).

    y_k = sum_{n < min(n_in, length)} x_n exp(-+2 pi i k n / length) (/ length when inverse).
    """
    n = np.arange(min(n_in, length))[:, None]
    k = np.arange(bins)[None, :]
    theta = 2.0 * np.pi * ((n * k) % length) / length
    sign = 1.0 if inverse else -1.0
    cos, sin = np.cos(theta), sign * np.sin(theta)  # exp(sign i theta) = cos + i sin
    rows = 2 if complex_in else 1
    w = np.zeros((n_in, rows, bins, 2))
    w[: n.shape[0], 0, :, 0] = cos  # re(x) -> re(y)
    w[: n.shape[0], 0, :, 1] = sin  # re(x) -> im(y)
    if complex_in:
        w[: n.shape[0], 1, :, 0] = -sin  # im(x) * i sin -> re(y)
        w[: n.shape[0], 1, :, 1] = cos
    if inverse:
        w /= length
    return w.reshape(n_in * rows, bins * 2)


def _dft(ctx: LowerContext, node: Node, axis: int) -> Any:
    x = node.input(0)
    dims = list(x.shape)
    rank = len(dims)
    if not -rank <= axis <= rank - 2:
        raise UnsupportedOpError(f"lower: {node.describe()}: axis={axis} is not a signal axis of rank {rank}")
    axis %= rank
    n_in, parts = dims[axis], dims[-1]
    if not all(isinstance(d, (int, np.integer)) for d in dims):
        raise UnsupportedOpError(f"lower: {node.describe()}: the signal shape {dims} must be static")
    length = _const_int(node, 1, "dft_length", int(n_in))
    inverse = bool(node.attrs.get("inverse", 0))
    onesided = bool(node.attrs.get("onesided", 0))
    if onesided and (inverse or parts == 2):
        raise UnsupportedOpError(f"lower: {node.describe()}: onesided applies to a forward real DFT only; fix the model")
    bins = length // 2 + 1 if onesided else length
    dtype = ctx.np_dtype(x)
    w = dft_matrix(int(n_in), int(length), bins, parts == 2, inverse)
    # Bring the transformed axis next to the re/im axis, then flatten the pair into features.
    perm = [d for d in range(rank - 1) if d != axis] + [axis, rank - 1]
    moved = x if axis == rank - 2 else ctx.mb.transpose(x=x, perm=perm)
    lead = [int(dims[d]) for d in perm[:-2]]
    flat = ctx.mb.reshape(x=moved, shape=lead + [int(n_in) * int(parts)])
    y = ctx.mb.linear(x=flat, weight=ctx.const(np.ascontiguousarray(w.T).astype(dtype))) if len(lead) <= 2 else \
        ctx.mb.matmul(x=flat, y=ctx.const(w.astype(dtype)))
    y = ctx.mb.reshape(x=y, shape=lead + [bins, 2])
    if axis != rank - 2:
        y = ctx.mb.transpose(x=y, perm=[int(i) for i in np.argsort(perm)])
    return y


@composite_op("DFT", since=17)
def dft(ctx: LowerContext, node: Node) -> Any:
    """y_k = sum_n x_n exp(-2 pi i k n / N) along ``axis`` (inverse: +, / N); onesided keeps N/2+1 bins.

    MIL: [transpose], reshape, linear (constant DFT matrix), reshape, [transpose].
    Limits: static signal shape and dft_length.
    """
    return _dft(ctx, node, int(node.attrs.get("axis", 1)))


@composite_op("DFT", since=20)
def dft_v20(ctx: LowerContext, node: Node) -> Any:
    """As opset 17, with the axis an input (default -2).  MIL: as opset 17.  Limits: constant axis."""
    return _dft(ctx, node, _const_int(node, 2, "axis", -2))


@composite_op("STFT", since=17)
def stft(ctx: LowerContext, node: Node) -> Any:
    """y[b, f, k] = sum_n w_n x[b, f*step + n] exp(-2 pi i k n / frame_length) (onesided: K = N/2+1).

    MIL: transpose (or reshape), conv with a constant windowed DFT kernel at stride frame_step,
    transpose, reshape.  Limits: static signal; constant frame_step, window and frame_length.
    """
    x = node.input(0)
    dims = list(x.shape)
    if len(dims) != 3 or not all(isinstance(d, (int, np.integer)) for d in dims):
        raise UnsupportedOpError(f"lower: {node.describe()}: the signal must be a static [batch, length, 1|2] tensor")
    batch, _, parts = (int(d) for d in dims)
    step = _const_int(node, 1, "frame_step")
    window = None
    if node.has_input(2):
        window = node.const_input(2)
        if window is None:
            raise UnsupportedOpError(f"lower: {node.describe()}: the window is computed at run time; make it a constant")
    frame = _const_int(node, 3, "frame_length (or a window)", None if window is None else int(window.size))
    onesided = bool(node.attrs.get("onesided", 1))
    bins = frame // 2 + 1 if onesided and parts == 1 else frame
    dtype = ctx.np_dtype(x)
    w = dft_matrix(frame, frame, bins, parts == 2, False).reshape(frame, parts, bins * 2)
    if window is not None:
        w = w * window.astype(np.float64).reshape(frame, 1, 1)
    kernel = np.ascontiguousarray(w.transpose(2, 1, 0)).astype(dtype)  # [bins*2, parts, frame]
    signal = ctx.mb.transpose(x=x, perm=[0, 2, 1]) if parts == 2 else ctx.mb.reshape(x=x, shape=[batch, 1, -1])
    y = ctx.mb.conv(x=signal, weight=ctx.const(kernel), strides=[step], pad_type="valid")
    y = ctx.mb.transpose(x=y, perm=[0, 2, 1])
    return ctx.mb.reshape(x=y, shape=[batch, -1, bins, 2])


def _window(ctx: LowerContext, node: Node, coeffs: tuple[float, ...]) -> Any:
    """w_n = sum_m (-1)^m a_m cos(2 pi m n / D), D = size (periodic) or size - 1 (symmetric)."""
    size = _const_int(node, 0, "size")
    if size <= 0:
        raise UnsupportedOpError(f"lower: {node.describe()}: size={size} gives an empty window; Core ML has no empty tensors")
    denom = size if int(node.attrs.get("periodic", 1)) else size - 1
    n = np.arange(size, dtype=np.float64)
    w = np.zeros(size)
    for m, a in enumerate(coeffs):
        w += (-1) ** m * a * np.cos(2.0 * np.pi * m * n / denom)
    dtype = onnx_to_numpy(int(node.attrs.get("output_datatype", 1)))
    return ctx.const(legalize_array(w.astype(dtype))[0])


@composite_op("HannWindow", since=17)
def hann_window(ctx: LowerContext, node: Node) -> Any:
    """w_n = 0.5 - 0.5 cos(2 pi n / D).  MIL: const.  Limits: constant size."""
    return _window(ctx, node, (0.5, 0.5))


@composite_op("HammingWindow", since=17)
def hamming_window(ctx: LowerContext, node: Node) -> Any:
    """w_n = 25/46 - 21/46 cos(2 pi n / D).  MIL: const.  Limits: constant size."""
    return _window(ctx, node, (25.0 / 46.0, 21.0 / 46.0))


@composite_op("BlackmanWindow", since=17)
def blackman_window(ctx: LowerContext, node: Node) -> Any:
    """w_n = 0.42 - 0.5 cos(2 pi n / D) + 0.08 cos(4 pi n / D).  MIL: const.  Limits: constant size."""
    return _window(ctx, node, (0.42, 0.5, 0.08))


def mel_matrix(mels: int, length: int, rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    """Triangular filters between mel-spaced FFT bins, [length/2 + 1, mels] (ONNX's definition).

    The mel scale is 2595 log10(1 + f / 700); the mels + 2 edges are spaced (high - low) /
    (mels + 2) apart from low (the spec's step), mapped back to Hz and to bins
    floor((length + 1) * f / rate); filter i rises from edge i to i+1 and falls to i+2.
    """
    def to_mel(f: float) -> float:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    lo, hi = to_mel(low_hz), to_mel(high_hz)
    mel_edges = lo + np.arange(mels + 2) * ((hi - lo) / (mels + 2))
    hz = 700.0 * (10.0 ** (mel_edges / 2595.0) - 1.0)
    edges = np.floor((length + 1) * hz / rate).astype(np.int64)
    out = np.zeros((length // 2 + 1, mels))
    j = np.arange(length // 2 + 1)
    for i in range(mels):
        left, centre, right = edges[i], edges[i + 1], edges[i + 2]
        if centre == left:
            out[centre, i] = 1.0
        else:
            rise = (j >= left) & (j <= centre)
            out[rise, i] = (j[rise] - left) / (centre - left)
        if right > centre:
            fall = (j >= centre) & (j < right)
            out[fall, i] = (right - j[fall]) / (right - centre)
    return out


@composite_op("MelWeightMatrix", since=17)
def mel_weight_matrix(ctx: LowerContext, node: Node) -> Any:
    """Triangular mel filter bank of shape [dft_length/2 + 1, num_mel_bins].  MIL: const.

    Limits: all inputs must be constants.
    """
    if any(node.const_input(i) is None for i in range(5)):
        raise UnsupportedOpError(f"lower: {node.describe()}: the filter bank's inputs must be constants")
    vals = [np.asarray(node.const_input(i)) for i in range(5)]
    mels, length, rate = (int(v.reshape(-1)[0]) for v in vals[:3])
    low, high = (float(v.reshape(-1)[0]) for v in vals[3:])
    dtype = onnx_to_numpy(int(node.attrs.get("output_datatype", 1)))
    return ctx.const(legalize_array(mel_matrix(mels, length, rate, low, high).astype(dtype))[0])
