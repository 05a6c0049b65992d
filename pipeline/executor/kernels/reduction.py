"""Kernels of MIL ops: reduction family (being written)."""

from __future__ import annotations
