"""Small ONNX models for the interface and compression tests (exported once per session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper, numpy_helper


def export_model(name: str, folder: Path) -> Path:
    """Export ``models/<name>`` with batch 1 through stage one; returns the .onnx path."""
    import importlib

    import pipeline

    module = importlib.import_module(f"models.{name}")
    model, inputs = module.build()
    path = folder / f"{name}.onnx"
    pipeline.export(model, tuple(t[:1] for t in inputs), path)
    return path


def grey_conv(folder: Path) -> Path:
    """(1, 1, 8, 8) -> Conv(1->2, 3x3, pad 1) -> (1, 2, 8, 8): a one-channel image model."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((2, 1, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["img", "w"], ["y"], pads=[1, 1, 1, 1], name="conv")], "g",
        [helper.make_tensor_value_info("img", T.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", T.FLOAT, [1, 2, 8, 8])], [w],
    )
    path = folder / "grey_conv.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path
