"""Kernels of MIL ops: control_flow family (being written)."""

from __future__ import annotations
