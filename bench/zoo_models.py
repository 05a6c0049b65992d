"""The model zoo of ``bench/zoo.py``: real architectures with random weights, no downloads.

Add a model with one :class:`ZooEntry`: a name, a factory returning the module in eval mode,
and a factory for its example inputs.  Every ``models/`` entry is included as is.  Weights are
random (torchvision ``weights=None``, transformers from a small config, timm
``pretrained=False``) and seeded; inputs are as small as each model allows, to keep the whole
run under an hour on two cores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from models._common import calibrate_batch_norms

SEED = 0


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """One zoo model: ``build()`` gives the eval-mode module, ``inputs()`` its example inputs."""

    name: str
    build_module: Callable[[], nn.Module]
    make_inputs: Callable[[], tuple[torch.Tensor, ...]]
    family: str = ""
    note: str = ""

    def build(self) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        """The seeded module (eval mode, no gradients) and seeded example inputs."""
        torch.manual_seed(SEED)
        module = self.build_module().eval()
        for p in module.parameters():
            p.requires_grad_(False)
        with torch.random.fork_rng():
            torch.manual_seed(SEED + 1)
            inputs = self.make_inputs()
        calibrate_batch_norms(module, inputs)
        return module, inputs


def _image(size: int, batch: int = 1) -> Callable[[], tuple[torch.Tensor, ...]]:
    return lambda: (torch.randn(batch, 3, size, size),)


def _tokens(vocab: int, length: int) -> Callable[[], tuple[torch.Tensor, ...]]:
    return lambda: (torch.randint(0, vocab, (1, length)),)


def _tv(name: str, **kwargs: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, name)(weights=None, **kwargs)

    return build


def _vit_b_16() -> nn.Module:
    # torchvision zero-initialises ViT's classification head: every output would be 0 and parity
    # would prove nothing, so give it random weights.
    import torchvision

    model = torchvision.models.vit_b_16(weights=None)
    nn.init.normal_(model.heads.head.weight, std=0.02)
    nn.init.normal_(model.heads.head.bias, std=0.02)
    return model


class _DictOut(nn.Module):
    """Unwrap ``model(x)[key]`` (torchvision segmentation models return a dict)."""

    def __init__(self, model: nn.Module, key: str) -> None:
        super().__init__()
        self.model = model
        self.key = key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[self.key]


def _segmentation(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        fn = getattr(torchvision.models.segmentation, name)
        return _DictOut(fn(weights=None, weights_backbone=None), "out")

    return build


class _SSDHeads(nn.Module):
    """SSDLite's backbone and heads: raw box regressions and class logits per anchor.

    The full detector ends in score thresholding, top-k and NMS; with random weights many scores
    tie, and tied scores reorder detections between implementations, so the zoo compares the
    raw head outputs every detection is decoded from.
    """

    def __init__(self) -> None:
        super().__init__()
        import torchvision

        full = torchvision.models.detection.ssdlite320_mobilenet_v3_large(
            weights=None, weights_backbone=None
        )
        self.backbone = full.backbone
        self.head = full.head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = list(self.backbone(x).values())
        out = self.head(features)
        return out["bbox_regression"], out["cls_logits"]


def _r3d_18() -> nn.Module:
    import torchvision

    return torchvision.models.video.r3d_18(weights=None)


class _HFLastHidden(nn.Module):
    """``model(input).last_hidden_state`` of a transformers base model."""

    def __init__(self, model: nn.Module, arg: str) -> None:
        super().__init__()
        self.model = model
        self.arg = arg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(**{self.arg: x}).last_hidden_state


class _HFLogits(nn.Module):
    """``model(input_ids).logits`` of a causal LM, without a KV cache."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, use_cache=False).logits


VOCAB = 1000


def _bert() -> nn.Module:
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=VOCAB, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=256, max_position_embeddings=64)
    return _HFLastHidden(BertModel(cfg, add_pooling_layer=False), "input_ids")


def _gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=128, n_layer=2, n_head=4,
                     bos_token_id=0, eos_token_id=0)
    return _HFLogits(GPT2LMHeadModel(cfg))


def _llama() -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return _HFLogits(LlamaForCausalLM(cfg))


def _hf_vit() -> nn.Module:
    from transformers import ViTConfig, ViTModel

    cfg = ViTConfig(image_size=64, patch_size=16, hidden_size=128, num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=256)
    return _HFLastHidden(ViTModel(cfg, add_pooling_layer=False), "pixel_values")


def _wav2vec2() -> nn.Module:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    cfg = Wav2Vec2Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=128, conv_dim=(32, 32, 32), conv_stride=(5, 2, 2),
                         conv_kernel=(10, 3, 3), num_conv_pos_embeddings=16,
                         num_conv_pos_embedding_groups=4, mask_time_prob=0.0)
    return _HFLastHidden(Wav2Vec2Model(cfg), "input_values")


def _mobilevit() -> nn.Module:
    import timm

    return timm.create_model("mobilevit_xxs", pretrained=False)


class _LSTMClassifier(nn.Module):
    """A plain single-layer ``nn.LSTM`` whose last time step feeds a linear classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size=16, hidden_size=32, batch_first=True)
        self.fc = nn.Linear(32, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


def _from_models(name: str) -> ZooEntry:
    import models

    item = models.entry(name)
    return ZooEntry(name, lambda: item.build()[0], lambda: item.build()[1], "models/",
                    item.description)


def _models_entries() -> list[ZooEntry]:
    import models

    return [_from_models(e.name) for e in models.ENTRIES]


CNN = 160  # image side for CNNs without a fixed input size: small, and not the trained 224

ZOO: list[ZooEntry] = [
    *_models_entries(),
    ZooEntry("resnet18", _tv("resnet18"), _image(CNN), "vision"),
    ZooEntry("resnet50", _tv("resnet50"), _image(CNN), "vision"),
    ZooEntry("mobilenet_v2", _tv("mobilenet_v2"), _image(CNN), "vision"),
    ZooEntry("mobilenet_v3_large", _tv("mobilenet_v3_large"), _image(CNN), "vision"),
    ZooEntry("efficientnet_b0", _tv("efficientnet_b0"), _image(CNN), "vision"),
    ZooEntry("squeezenet1_1", _tv("squeezenet1_1"), _image(CNN), "vision"),
    ZooEntry("densenet121", _tv("densenet121"), _image(CNN), "vision"),
    ZooEntry("convnext_tiny", _tv("convnext_tiny"), _image(CNN), "vision"),
    ZooEntry("vit_b_16", _vit_b_16, _image(224), "vision", "head re-initialised (zero by default)"),
    ZooEntry("swin_t", _tv("swin_t"), _image(224), "vision"),
    ZooEntry("deeplabv3_mobilenet_v3_large", _segmentation("deeplabv3_mobilenet_v3_large"),
             _image(CNN), "segmentation", "output 'out'"),
    ZooEntry("lraspp_mobilenet_v3_large", _segmentation("lraspp_mobilenet_v3_large"),
             _image(CNN), "segmentation", "output 'out'"),
    ZooEntry("ssdlite320_mobilenet_v3_large", _SSDHeads, _image(320), "detection",
             "raw head outputs (NMS on tied random scores reorders detections)"),
    ZooEntry("r3d_18", _r3d_18, lambda: (torch.randn(1, 3, 4, 64, 64),), "video"),
    ZooEntry("bert", _bert, _tokens(VOCAB, 32), "transformers"),
    ZooEntry("gpt2", _gpt2, _tokens(VOCAB, 32), "transformers"),
    ZooEntry("llama", _llama, _tokens(VOCAB, 32), "transformers", "LlamaConfig, 2 layers, GQA"),
    ZooEntry("hf_vit", _hf_vit, _image(64), "transformers"),
    ZooEntry("wav2vec2", _wav2vec2, lambda: (torch.randn(1, 4000),), "transformers"),
    ZooEntry("mobilevit_xxs", _mobilevit, _image(128), "timm"),
    ZooEntry("lstm_classifier", _LSTMClassifier, lambda: (torch.randn(1, 10, 16),), "recurrent"),
]


def entry(name: str) -> ZooEntry:
    """The zoo entry called ``name``; KeyError lists the known names."""
    for item in ZOO:
        if item.name == name:
            return item
    raise KeyError(f"no zoo model {name!r}; known: {', '.join(e.name for e in ZOO)}")
