"""Kernels of MIL ops: elementwise_unary family (being written)."""

from __future__ import annotations
