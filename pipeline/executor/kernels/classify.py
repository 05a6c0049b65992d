"""Kernel of MIL's ``classify`` op (coremltools defs: iOS15/classify.py).

Ops: classify.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.errors import ExecutorError
from pipeline.executor.kernels.registry import mil_kernel


@mil_kernel("classify")
def classify(probabilities: np.ndarray, classes: list[Any]) -> tuple[Any, dict[Any, float]]:
    """label = classes[argmax(p)], and {class: p} over the flattened probabilities."""
    probs = np.asarray(probabilities).reshape(-1)
    labels = [c.item() if isinstance(c, np.generic) else c for c in classes]
    if len(labels) != probs.size:
        raise ExecutorError(
            f"classify: {len(labels)} classes for {probs.size} probabilities"
        )
    if probs.size == 0:
        raise ExecutorError("classify: no probabilities")
    label = labels[int(np.argmax(probs))]
    return label, {c: float(p) for c, p in zip(labels, probs)}
