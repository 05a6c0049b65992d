"""Kernels of MIL ops: pool family (being written)."""

from __future__ import annotations
