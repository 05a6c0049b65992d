"""Kernels of MIL's transformer ops (coremltools defs: iOS18 transformers.py).

Ops: scaled_dot_product_attention (iOS18).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from pipeline.executor.kernels.registry import IOS18, mil_kernel

log = logging.getLogger(__name__)


@mil_kernel("scaled_dot_product_attention", since=IOS18)
def scaled_dot_product_attention(
    query: np.ndarray, key: np.ndarray, value: np.ndarray, attn_mask: Any = None
) -> np.ndarray:
    """softmax(Q K^T / sqrt(E) + mask) V; a bool mask keeps True positions (False -> -inf)."""
    dt = query.dtype
    # torch's CPU matmul/softmax are fast and run fp16 as fp16 (with fp32 accumulation).
    q, k, v = (torch.from_numpy(np.ascontiguousarray(a)) for a in (query, key, value))
    scores = torch.matmul(q, k.transpose(-2, -1)) / float(np.sqrt(query.shape[-1]))
    if attn_mask is not None:
        mask = np.asarray(attn_mask)
        if mask.dtype == np.bool_:
            scores = scores.masked_fill(~torch.from_numpy(mask), float("-inf"))
        else:
            scores = scores + torch.from_numpy(mask.astype(dt))
    weights = torch.softmax(scores, dim=-1)
    return torch.matmul(weights, v).numpy().astype(dt)
