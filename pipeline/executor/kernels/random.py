"""Kernels of MIL ops: random family (being written)."""

from __future__ import annotations
