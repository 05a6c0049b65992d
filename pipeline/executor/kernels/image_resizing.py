"""Kernels of MIL ops: image_resizing family (being written)."""

from __future__ import annotations
