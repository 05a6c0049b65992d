"""Kernels of MIL ops: recurrent family (being written)."""

from __future__ import annotations
