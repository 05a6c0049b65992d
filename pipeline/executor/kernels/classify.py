"""Kernels of MIL ops: classify family (being written)."""

from __future__ import annotations
