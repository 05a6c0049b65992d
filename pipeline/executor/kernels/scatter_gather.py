"""Kernels of MIL ops: scatter_gather family (being written)."""

from __future__ import annotations
