"""Loading and checking the ONNX model stage two receives."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from onnx import external_data_helper

from pipeline.errors import ModelLoadError, ValidationError

#: Newest default-domain opset the lowering handles.
MAX_DEFAULT_OPSET = 28


def _check_external_data(model: onnx.ModelProto, base: Path) -> None:
    """Refuse external data whose location leaves the model's folder."""
    root = base.resolve()
    for tensor in external_data_helper._get_all_tensors(model):
        if not external_data_helper.uses_external_data(tensor):
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        target = (root / location).resolve()
        if os.path.isabs(location) or root not in target.parents:
            raise ModelLoadError(
                f"lower: tensor '{tensor.name}' points its external data at '{location}', "
                "outside the model's folder; move the data next to the .onnx file"
            )
        if not target.exists():
            raise ModelLoadError(f"lower: external data file '{location}' of tensor '{tensor.name}' is missing")


def load_onnx(model: onnx.ModelProto | str | os.PathLike[str]) -> onnx.ModelProto:
    """Load (if a path), check with the full checker, and shape-infer an ONNX model."""
    if isinstance(model, onnx.ModelProto):
        proto = model
    else:
        path = Path(model)
        if not path.is_file():
            raise ModelLoadError(f"lower: no such ONNX file: {path}")
        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as exc:
            raise ModelLoadError(f"lower: {path} is not a readable ONNX model ({type(exc).__name__}: {str(exc)[:120]})") from None
        if not proto.graph.node and not proto.graph.output:
            raise ModelLoadError(f"lower: {path} holds no graph (empty or truncated file?)")
        _check_external_data(proto, path.parent)
        try:
            external_data_helper.load_external_data_for_model(proto, str(path.parent))
        except Exception as exc:
            raise ModelLoadError(f"lower: could not read external data of {path}: {exc}") from None
    default = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if default is not None and default > MAX_DEFAULT_OPSET:
        raise ValidationError(
            f"lower: the model uses opset {default}; the newest supported is {MAX_DEFAULT_OPSET}. "
            "Re-export with a lower --opset"
        )
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValidationError(f"lower: the ONNX checker rejects the model: {first}") from None
    try:
        proto = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    except Exception as exc:
        raise ValidationError(f"lower: ONNX shape inference failed: {str(exc).splitlines()[0]}") from None
    return proto
