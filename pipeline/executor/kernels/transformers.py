"""Kernels of MIL ops: transformers family (being written)."""

from __future__ import annotations
