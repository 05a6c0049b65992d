"""The interface of the Core ML model a user receives: image inputs and outputs, classifiers,
fp16 inputs/outputs and descriptive metadata.

* Image input: the app hands Core ML a ``CVPixelBuffer``; Core ML gives the ML Program the pixel
  values (0..255, channels in the declared colour order, NCHW float32) and the program computes
  ``x = pixel * scale + bias`` per channel before the ONNX graph's first node.  For ML Programs
  coremltools' own ``ImageType`` preprocessing is also just ``mul``/``add`` ops in the program
  (the spec carries none), so we emit those two ops ourselves: that allows a per-channel scale
  (e.g. ImageNet's ``1/(255*std)``), which Core ML's image type cannot hold, and the executor
  sees exactly what a device runs.  The ``ImageType`` we declare has scale 1 and bias 0.
* Image output: the program's (1, C, H, W) output, times ``scale`` (e.g. 255 for a [0, 1] mask),
  becomes a Core ML image (Core ML clamps to 0..255 when it fills the pixel buffer).
* Classifier: coremltools appends a ``classify`` op to the probabilities output; the model then
  returns ``classLabel`` (top-1 label) and ``classLabel_probs`` (label -> value).  The values are
  the model's output as is (add a Softmax in the model if it emits logits).
* ``io_dtype="fp16"``: float inputs and outputs are float16 (Core ML needs iOS16 for that).

The :class:`pipeline.lowering.interface.IOAdapter` calls into this module: it maps ONNX-typed
feeds to pixels (the inverse of the preprocessing) and Core ML outputs back to ONNX arrays, so
parity is measured on the same numbers a device would see.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import LoweringError

log = logging.getLogger(__name__)

COLOR_LAYOUTS = ("RGB", "BGR", "GRAYSCALE")
#: Name coremltools gives the top-1 label output of a classifier (and ``<name>_probs`` to the dict).
CLASS_LABEL = "classLabel"
#: Core ML takes float16 model inputs/outputs from iOS16 on.
FP16_IO_TARGET = 16


@dataclasses.dataclass
class ImageInput:
    """An input that Core ML feeds from an image: ``x = pixel * scale + bias`` per channel."""

    name: str
    color_layout: str = "RGB"
    scale: tuple[float, ...] = (1.0,)
    bias: tuple[float, ...] = (0.0,)

    @property
    def channels(self) -> int:
        return 1 if self.color_layout == "GRAYSCALE" else 3

    def per_channel(self, values: tuple[float, ...], what: str) -> np.ndarray:
        """``values`` broadcast to shape (1, C, 1, 1)."""
        if len(values) not in (1, self.channels):
            raise LoweringError(
                f"lower: image input '{self.name}' ({self.color_layout}) takes 1 or "
                f"{self.channels} {what} values, got {len(values)}; e.g. --{what} 0.0078"
            )
        arr = np.asarray(values, dtype=np.float32)
        return np.broadcast_to(arr, (self.channels,)).reshape(1, self.channels, 1, 1).copy()

    def to_pixels(self, x: np.ndarray) -> np.ndarray:
        """The pixels a device would feed for the ONNX input ``x`` (inverse preprocessing)."""
        scale, bias = self.per_channel(self.scale, "scale"), self.per_channel(self.bias, "bias")
        return ((np.asarray(x, np.float32) - bias) / scale).astype(np.float32)

    def from_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """The ONNX input the program computes from ``pixels``."""
        scale, bias = self.per_channel(self.scale, "scale"), self.per_channel(self.bias, "bias")
        return (np.asarray(pixels, np.float32) * scale + bias).astype(np.float32)


@dataclasses.dataclass
class ImageOutput:
    """An output that Core ML returns as an image: ``pixel = y * scale``."""

    name: str
    color_layout: str = "auto"  # GRAYSCALE for one channel, else RGB
    scale: float = 1.0


@dataclasses.dataclass
class Metadata:
    """Descriptive metadata shown in Xcode's model viewer."""

    author: str = ""
    license: str = ""
    version: str = ""
    description: str = ""
    inputs: dict[str, str] = dataclasses.field(default_factory=dict)
    outputs: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class InterfaceOptions:
    """Everything about the model's interface beyond shapes (see the module docstring)."""

    images: dict[str, ImageInput] = dataclasses.field(default_factory=dict)
    image_outputs: dict[str, ImageOutput] = dataclasses.field(default_factory=dict)
    class_labels: list[str] = dataclasses.field(default_factory=list)
    probabilities: str = ""  # ONNX output holding class probabilities (default: the first)
    io_dtype: str = "fp32"
    metadata: Metadata = dataclasses.field(default_factory=Metadata)

    @property
    def classifier(self) -> bool:
        return bool(self.class_labels)

    def needed_target(self) -> tuple[int, str] | None:
        """The iOS version these options need beyond iOS15, and why."""
        if self.io_dtype == "fp16":
            return FP16_IO_TARGET, "has float16 inputs/outputs (--io-dtype fp16)"
        return None


def read_labels(path: str | os.PathLike[str]) -> list[str]:
    """Class labels from a text file, one a line (blank lines ignored)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LoweringError(f"lower: --class-labels {path}: cannot read ({exc})") from None
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise LoweringError(f"lower: --class-labels {path}: no labels (one label a line)")
    return labels


def source_sha256(model: Any) -> str:
    """sha256 of the ONNX bytes: the file's bytes for a path, else the serialized proto."""
    if isinstance(model, (str, os.PathLike)):
        data = Path(model).read_bytes()
    else:
        data = model.SerializeToString()
    return hashlib.sha256(data).hexdigest()


# -- validating against the graph (called by IOAdapter.from_graph) -------------------------------


def attach(inputs: Sequence[Any], outputs: Sequence[Any], options: InterfaceOptions | None) -> None:
    """Check ``options`` against the graph's signatures and attach image / fp16 settings."""
    if options is None:
        return
    by_in = {s.name: s for s in inputs}
    by_out = {s.name: s for s in outputs}
    for kind, names, known in (("input", options.images, by_in), ("output", options.image_outputs, by_out),
                               ("input", options.metadata.inputs, by_in), ("output", options.metadata.outputs, by_out)):
        for name in names:
            if name not in known:
                raise LoweringError(f"lower: no model {kind} named '{name}' ({kind}s: {sorted(known)})")
    if options.probabilities and options.probabilities not in by_out:
        raise LoweringError(f"lower: --class-output '{options.probabilities}' is not a model output ({sorted(by_out)})")
    for name, spec in options.images.items():
        _check_image(by_in[name], spec.color_layout, "input", spec.channels)
        spec.per_channel(spec.scale, "scale")
        spec.per_channel(spec.bias, "bias")
        by_in[name].image = spec
    for name, out in options.image_outputs.items():
        sig = by_out[name]
        if out.color_layout == "auto":  # from the channel count: 1 grey, 3 RGB
            out.color_layout = "GRAYSCALE" if len(sig.shape) > 1 and sig.shape[1] == 1 else "RGB"
        _check_image(sig, out.color_layout, "output", 1 if out.color_layout == "GRAYSCALE" else 3)
        sig.image = out
    if options.io_dtype not in ("fp32", "fp16"):
        raise LoweringError(f"lower: unknown --io-dtype {options.io_dtype!r}; choose fp32 or fp16")
    if options.io_dtype == "fp16":
        for sig in inputs:
            if sig.onnx_dtype.kind == "f" and sig.image is None:
                sig.coreml_dtype = "float16"
        for sig in outputs:
            sig.fp16 = sig.image is None


def _check_image(sig: Any, layout: str, kind: str, channels: int) -> None:
    if layout not in COLOR_LAYOUTS:
        raise LoweringError(f"lower: image {kind} '{sig.name}': unknown color layout {layout!r}; choose {'|'.join(COLOR_LAYOUTS)}")
    if sig.onnx_dtype.kind != "f":
        raise LoweringError(f"lower: image {kind} '{sig.name}' must be a float tensor, not {sig.onnx_dtype}")
    shape = tuple(sig.coreml_shape or sig.shape) if kind == "input" else tuple(sig.shape)
    if len(shape) != 4 or shape[0] != 1 or shape[1] != channels or not all(isinstance(d, int) for d in shape):
        raise LoweringError(
            f"lower: image {kind} '{sig.name}' has shape {shape}; a {layout} image must be "
            f"(1, {channels}, H, W): export the model with batch 1 (NCHW), or fix it with --input-shape"
        )


# -- MIL (called while the driver builds the program) ---------------------------------------------


def preprocess(var: Any, spec: ImageInput) -> Any:
    """``x = pixel * scale + bias`` (per channel).  MIL: mul, add (skipped when identity)."""
    from coremltools.converters.mil import Builder as mb

    scale = spec.per_channel(spec.scale, "scale")
    bias = spec.per_channel(spec.bias, "bias")
    if np.any(scale != 1.0):
        # One scalar when uniform (a single broadcast constant), else (1, C, 1, 1).
        y = np.float32(scale.flat[0]) if np.all(scale == scale.flat[0]) else scale
        var = mb.mul(x=var, y=y, name=f"{spec.name}__scaled")
    if np.any(bias != 0.0):
        var = mb.add(x=var, y=bias, name=f"{spec.name}__biased")
    return var


def postprocess(var: Any, sig: Any) -> Any:
    """Image outputs: ``pixel = y * scale`` (MIL: mul); fp16 outputs: MIL cast to fp16."""
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    image = getattr(sig, "image", None)
    if image is not None:
        if var.dtype != types.fp32:
            var = mb.cast(x=var, dtype="fp32", name=f"{sig.name}__fp32")
        if image.scale != 1.0:
            var = mb.mul(x=var, y=np.float32(image.scale), name=f"{sig.name}__pixels")
    elif getattr(sig, "fp16", False) and types.is_float(var.dtype) and var.dtype != types.fp16:
        var = mb.cast(x=var, dtype="fp16", name=f"{sig.name}__fp16")
    return var


def image_input_type(sig: Any) -> Any:
    """The coremltools ``ImageType`` of an image input (preprocessing lives in the program)."""
    import coremltools as ct

    layout = {"RGB": ct.colorlayout.RGB, "BGR": ct.colorlayout.BGR, "GRAYSCALE": ct.colorlayout.GRAYSCALE}
    return ct.ImageType(name=sig.coreml_name, shape=tuple(sig.coreml_shape), scale=1.0,
                        bias=[0.0] * sig.image.channels if sig.image.channels == 3 else 0.0,
                        color_layout=layout[sig.image.color_layout], channel_first=True)


def output_types(outputs: Sequence[Any]) -> list[Any] | None:
    """coremltools output types: ImageType for image outputs, TensorType for the others."""
    import coremltools as ct

    if not any(getattr(s, "image", None) is not None for s in outputs):
        return None
    layout = {"RGB": ct.colorlayout.RGB, "BGR": ct.colorlayout.BGR, "GRAYSCALE": ct.colorlayout.GRAYSCALE}
    return [
        ct.ImageType(name=s.coreml_name, color_layout=layout[s.image.color_layout], channel_first=True)
        if getattr(s, "image", None) is not None else ct.TensorType(name=s.coreml_name)
        for s in outputs
    ]


# -- conversion ------------------------------------------------------------------------------------


def classifier_config(options: InterfaceOptions | None, adapter: Any) -> Any:
    """A coremltools ``ClassifierConfig`` (None when the model is not a classifier)."""
    if options is None or not options.classifier:
        return None
    import coremltools as ct

    name = options.probabilities or adapter.outputs[0].name
    sig = next(s for s in adapter.outputs if s.name == name)
    count = int(np.prod([d for d in sig.coreml_shape if isinstance(d, int)])) if sig.coreml_shape else 0
    if count and count != len(options.class_labels):
        raise LoweringError(
            f"lower: output '{name}' has {count} values but --class-labels lists "
            f"{len(options.class_labels)} labels; give one label per class"
        )
    if len(sig.coreml_shape) > 2 or (len(sig.coreml_shape) == 2 and sig.coreml_shape[0] != 1):
        raise LoweringError(
            f"lower: classifier output '{name}' has shape {sig.coreml_shape}; Core ML classifies "
            "one sample: export with batch 1 so that it is (N,) or (1, N)"
        )
    return ct.ClassifierConfig(list(options.class_labels), predicted_feature_name=CLASS_LABEL,
                               predicted_probabilities_output=sig.coreml_name)


def restore_classifier(outputs: Mapping[str, Any], options: InterfaceOptions, adapter: Any) -> dict[str, Any]:
    """Turn ``classLabel_probs`` (label -> value) back into the ONNX probabilities array."""
    probs = outputs.get(CLASS_LABEL + "_probs")
    if not isinstance(probs, Mapping):
        return dict(outputs)
    name = options.probabilities or adapter.outputs[0].name
    sig = next(s for s in adapter.outputs if s.name == name)
    values = np.array([probs[label] for label in options.class_labels], dtype=np.float32)
    restored = dict(outputs)
    restored[sig.coreml_name] = values.reshape([d for d in sig.coreml_shape])
    return restored


def top1_agreement(labels: Sequence[str], predicted: Sequence[str], reference: Sequence[np.ndarray]) -> float:
    """Fraction of samples whose predicted label is the reference's argmax label."""
    if not predicted:
        return float("nan")
    hits = sum(p == labels[int(np.argmax(r))] for p, r in zip(predicted, reference))
    return hits / len(predicted)


def apply_metadata(mlmodel: Any, options: InterfaceOptions | None, adapter: Any, extra: Mapping[str, str]) -> None:
    """Descriptive metadata plus ``extra`` (always: source hash, tool version) into the model."""
    meta = mlmodel.user_defined_metadata
    for key, value in extra.items():
        meta[key] = value
    if options is None:
        return
    md = options.metadata
    if md.author:
        mlmodel.author = md.author
    if md.license:
        mlmodel.license = md.license
    if md.version:
        mlmodel.version = md.version
    if md.description:
        mlmodel.short_description = md.description
    names = {s.name: s.coreml_name for s in adapter.inputs + adapter.outputs}
    for onnx_name, text in md.inputs.items():
        mlmodel.input_description[names[onnx_name]] = text
    for onnx_name, text in md.outputs.items():
        if options.classifier and onnx_name == (options.probabilities or adapter.outputs[0].name):
            mlmodel.output_description[CLASS_LABEL + "_probs"] = text
        else:
            mlmodel.output_description[names[onnx_name]] = text
