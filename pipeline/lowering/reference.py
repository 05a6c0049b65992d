"""onnxruntime as the reference for stage two's parity checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx

from pipeline.errors import ValidationError


def run_onnxruntime(
    model: onnx.ModelProto, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Run ``model`` on CPU with graph optimizations off (what the graph says, not a rewrite)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own classes
        raise ValidationError(f"onnxruntime cannot load the model: {str(exc).splitlines()[0][:200]}") from None
    names = list(outputs) if outputs is not None else [o.name for o in sess.get_outputs()]
    from pipeline.lowering.empty_inputs import empty_feeds

    feeds = {**empty_feeds(model.graph), **feeds}  # empty inputs are not Core ML inputs: fill them in
    wanted = {i.name for i in sess.get_inputs()}
    result = sess.run(names, {k: v for k, v in feeds.items() if k in wanted})
    return dict(zip(names, (np.asarray(r) for r in result)))
