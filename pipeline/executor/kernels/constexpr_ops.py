"""Kernels of MIL ops: constexpr_ops family (being written)."""

from __future__ import annotations
