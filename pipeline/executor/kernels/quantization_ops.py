"""Kernels of MIL ops: quantization_ops family (being written)."""

from __future__ import annotations
