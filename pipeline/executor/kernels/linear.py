"""Kernels of MIL ops: linear family (being written)."""

from __future__ import annotations
