"""Sample models as importable factories: the cases the PyTorch -> ONNX -> Core ML folklore is about.

Every module here has ``build() -> (module, example_inputs)``: the module in eval mode with seeded
random weights, and a tuple of seeded example tensors.  :data:`ENTRIES` lists them explicitly (tests
and the demo iterate it); add a model by writing a module and appending one :class:`ModelEntry`.
A factory spec ``models.<name>:build`` is accepted by ``python -m pipeline.export``.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One sample model: its name, its factory spec ``module:callable`` and what it exercises."""

    name: str
    factory: str
    description: str

    def build(self) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
        """Import the factory and call it."""
        module_name, _, attr = self.factory.partition(":")
        result: tuple[torch.nn.Module, tuple[torch.Tensor, ...]] = getattr(
            importlib.import_module(module_name), attr
        )()
        return result


ENTRIES: list[ModelEntry] = [
    ModelEntry("maximum", "models.maximum:build", "elementwise torch.maximum of two inputs"),
    ModelEntry(
        "small_cnn", "models.small_cnn:build",
        "conv, ReLU, max-pool, flatten, linear on 32x32 images",
    ),
    ModelEntry(
        "custom_activation", "models.custom_activation:build",
        "a custom activation sigmoid(x) * tanh(x) after a convolution",
    ),
    ModelEntry(
        "face_seg", "models.face_seg:build",
        "face-segmentation style encoder-decoder: ReLU6, Hardtanh, upsampling, skip concat",
    ),
    ModelEntry("topk", "models.topk:build", "torch.topk values and indices"),
    ModelEntry("log10_atan2", "models.log10_atan2:build", "torch.log10 and torch.atan2"),
    ModelEntry(
        "transformer_block", "models.transformer_block:build",
        "nn.TransformerEncoderLayer (batch_first, 4 heads)",
    ),
    ModelEntry("lstm", "models.lstm:build", "two-layer batch_first nn.LSTM returning out, h and c"),
    ModelEntry(
        "mobilenet_block", "models.mobilenet_block:build",
        "MobileNetV2 inverted residual: ReLU6, depthwise conv, BN, residual, Hardtanh",
    ),
]


def entry(name: str) -> ModelEntry:
    """The entry called ``name``; KeyError lists the known names."""
    for item in ENTRIES:
        if item.name == name:
            return item
    raise KeyError(f"no sample model {name!r}; known: {', '.join(e.name for e in ENTRIES)}")
