"""Kernels of MIL ops: state family (being written)."""

from __future__ import annotations
