"""Kernels of MIL ops: normalization family (being written)."""

from __future__ import annotations
