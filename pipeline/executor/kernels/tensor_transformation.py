"""Kernels of MIL ops: tensor_transformation family (being written)."""

from __future__ import annotations
