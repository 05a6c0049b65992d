"""Kernels of MIL ops: conv family (being written)."""

from __future__ import annotations
