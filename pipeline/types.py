"""Type aliases shared across the pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: What a lowering handler returns: one MIL value (or None for an omitted output) per ONNX output.
Outputs = Sequence[Any]

#: Named tensors, as the executor, onnxruntime and the parity checks exchange them.
Feeds = dict[str, np.ndarray]
