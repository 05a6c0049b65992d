"""Kernels of MIL ops: tensor_operation family (being written)."""

from __future__ import annotations
