"""Kernels of MIL's convolution ops (coremltools defs: conv.py).

Ops: conv (iOS15; iOS17 lets weight/bias dtype differ from x), conv_quantized, conv_transpose
(iOS15; iOS17 same, non-const weight allowed).

Computed with torch.nn.functional on CPU.  fp16 programs are computed in fp32 and the result is
rounded once to fp16: a device accumulates fp16 convolutions in at least fp16 with fp32
partial sums on most units, so this is the closest portable reference (documented limit).

Padding (``pad_type``), per spatial dim with dilated kernel ``k = (K-1)*d + 1``:
``valid`` none; ``custom`` ``pad[2i], pad[2i+1]``; ``same`` total
``max(0, (ceil(D/s)-1)*s + k - D)`` split as ``total//2`` before and the odd extra after;
``same_lower`` puts the odd extra before.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.errors import ExecutorError
from pipeline.executor.kernels.registry import mil_kernel
from pipeline.executor.kernels.tensor_transformation import ints

log = logging.getLogger(__name__)



def _tensor(a: np.ndarray) -> torch.Tensor:
    """A float32 torch view of ``a`` (no copy when it already is contiguous float32).

    Weights come read-only from the model's memory-mapped blobs; torch warns on wrapping a
    read-only array although the convolution only reads it.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

def spatial_pads(
    pad_type: str,
    in_sizes: list[int],
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
    pad: list[int] | None,
) -> list[tuple[int, int]]:
    """(before, after) padding per spatial dim for MIL's conv/pool ``pad_type``."""
    kind = str(pad_type).lower()
    if kind == "valid":
        return [(0, 0)] * len(in_sizes)
    if kind == "custom":
        p = pad if pad is not None else [0] * (2 * len(in_sizes))
        return [(p[2 * i], p[2 * i + 1]) for i in range(len(in_sizes))]
    if kind in ("same", "same_lower"):
        out = []
        for size, k, s, d in zip(in_sizes, kernel, strides, dilations):
            eff = (k - 1) * d + 1
            total = max(0, (math.ceil(size / s) - 1) * s + eff - size)
            small, big = total // 2, total - total // 2
            out.append((small, big) if kind == "same" else (big, small))
        return out
    raise ExecutorError(f"execute: pad_type {pad_type!r} is not valid/same/same_lower/custom")


def _torch_pad(pads: list[tuple[int, int]]) -> list[int]:
    """F.pad order: last dim first."""
    flat: list[int] = []
    for before, after in reversed(pads):
        flat += [before, after]
    return flat


def _conv(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    strides: Any,
    pad_type: Any,
    pad: Any,
    dilations: Any,
    groups: Any,
) -> np.ndarray:
    nsp = x.ndim - 2
    if nsp not in (1, 2, 3):
        raise ExecutorError(f"execute: conv needs 1-3 spatial dims, x has shape {x.shape}")
    st = ints(strides) if strides is not None else [1] * nsp
    dl = ints(dilations) if dilations is not None else [1] * nsp
    kernel = list(weight.shape[2:])
    pads = spatial_pads(
        str(pad_type or "valid"),
        list(x.shape[2:]),
        kernel,
        st,
        dl,
        ints(pad) if pad is not None else None,
    )
    xt = _tensor(x)
    # Symmetric padding goes to the conv itself: F.pad + padding=0 is ~3x slower (oneDNN).
    symmetric = all(before == after for before, after in pads)
    if not symmetric:
        xt = F.pad(xt, _torch_pad(pads))
    conv_pad = [before for before, _ in pads] if symmetric else 0
    wt = _tensor(weight)
    bt = None if bias is None else _tensor(bias)
    fn = (F.conv1d, F.conv2d, F.conv3d)[nsp - 1]
    with torch.no_grad():
        y = fn(xt, wt, bt, stride=st, padding=conv_pad, dilation=dl, groups=int(groups))
    return y.numpy().astype(x.dtype, copy=False)


@mil_kernel("conv")
def conv(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    strides: Any = None,
    pad_type: Any = "valid",
    pad: Any = None,
    dilations: Any = None,
    groups: Any = 1,
) -> np.ndarray:
    """y[n, o] = sum_{c in group(o), k} x_pad[n, c, s*i + d*k] * w[o, c, k] + b[o]."""
    return _conv(x, weight, bias, strides, pad_type, pad, dilations, groups)


def _dequantize_weight(
    weight: np.ndarray, quantization_type: str, nbits: int, scale: np.ndarray, bias: np.ndarray
) -> np.ndarray:
    """linear: W = Wq * scale + bias (scale/bias scalar or per output channel); lut: W = scale[Wq]."""
    wq = np.asarray(weight).astype(np.int64)
    if np.any(wq >= 2**nbits):
        raise ExecutorError(f"execute: conv_quantized weight has values >= 2**nbits ({nbits} bits)")
    scale = np.asarray(scale, dtype=np.float32)
    if quantization_type == "linear":
        per_channel = (-1,) + (1,) * (wq.ndim - 1)
        s = scale.reshape(per_channel) if scale.size > 1 else scale.reshape(())
        b = np.asarray(bias, dtype=np.float32)
        b = b.reshape(per_channel) if b.size > 1 else b.reshape(())
        return wq.astype(np.float32) * s + b
    if quantization_type == "lut":
        # The NeuralNetwork spec's lookup-table weights: a 2**nbits table of floats.
        return scale.reshape(-1)[wq]
    raise ExecutorError(
        f"execute: conv_quantized quantization_type {quantization_type!r} is not linear or lut"
    )


@mil_kernel("conv_quantized")
def conv_quantized(
    x: np.ndarray,
    weight: np.ndarray,
    quantization_type: Any,
    quant_scale: np.ndarray,
    quant_bias: np.ndarray,
    bias: np.ndarray | None = None,
    nbits: Any = 8,
    strides: Any = None,
    pad_type: Any = "valid",
    pad: Any = None,
    dilations: Any = None,
    groups: Any = 1,
) -> np.ndarray:
    """conv with W dequantized from uint8 first (see _dequantize_weight)."""
    w = _dequantize_weight(weight, str(quantization_type), int(nbits), quant_scale, quant_bias)
    return _conv(x, w, bias, strides, pad_type, pad, dilations, groups)


@mil_kernel("conv_transpose")
def conv_transpose(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    pad: Any = None,
    output_shape: Any = None,
    pad_type: Any = "valid",
    strides: Any = None,
    dilations: Any = None,
    groups: Any = 1,
) -> np.ndarray:
    """Gradient of conv: full size (D-1)*s + (K-1)*d + 1, cropped by pad_type / output_shape.

    ``custom`` crops ``pad[2i]`` before and ``pad[2i+1]`` after; ``same`` crops to ``D*s``
    (odd extra cropped at the end); with ``output_shape`` the crop start stays as for the pad
    type and the end is cut (or zero-extended) to the requested size.
    """
    nsp = x.ndim - 2
    if nsp not in (1, 2, 3):
        raise ExecutorError(f"execute: conv_transpose needs 1-3 spatial dims, x has {x.shape}")
    st = ints(strides) if strides is not None else [1] * nsp
    dl = ints(dilations) if dilations is not None else [1] * nsp
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    wt = torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32))
    fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[nsp - 1]
    with torch.no_grad():
        full = fn(xt, wt, None, stride=st, padding=0, dilation=dl, groups=int(groups)).numpy()
    kind = str(pad_type or "valid").lower()
    target = ints(output_shape)[2:] if output_shape is not None else None
    index: list[slice] = [slice(None), slice(None)]
    extend: list[tuple[int, int]] = [(0, 0), (0, 0)]
    for i in range(nsp):
        size, d_in = full.shape[2 + i], x.shape[2 + i]
        if kind == "custom":
            p = ints(pad) if pad is not None else [0] * (2 * nsp)
            start, want = p[2 * i], size - p[2 * i] - p[2 * i + 1]
        elif kind == "same":
            want = d_in * st[i]
            start = max(0, size - want) // 2
        elif kind == "valid":
            start, want = 0, size
        else:
            raise ExecutorError(
                f"execute: conv_transpose pad_type {pad_type!r} is not valid/same/custom"
            )
        if target is not None:
            if kind == "same":
                start = max(0, size - target[i]) // 2
            want = target[i]
        stop = min(size, start + want)
        index.append(slice(start, stop))
        extend.append((0, want - (stop - start)))
    y = full[tuple(index)]
    if any(e[1] for e in extend):
        y = np.pad(y, extend)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float32).reshape((-1,) + (1,) * nsp)
    return y.astype(x.dtype, copy=False)
