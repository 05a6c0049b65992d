"""Kernels of MIL ops: activation family (being written)."""

from __future__ import annotations
