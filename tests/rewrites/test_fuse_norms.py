"""fuse_layer_norm (-> LayerNormalization-17) and fuse_rms_norm (-> RMSNormalization-23)."""

from __future__ import annotations

import torch

from tests.rewrites.support import check_pass, export_torch, op_types, run_one


class HandLayerNorm(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(16))
        self.b = torch.nn.Parameter(torch.randn(16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x - x.mean(-1, keepdim=True)
        return d / torch.sqrt(d.pow(2).mean(-1, keepdim=True) + 1e-5) * self.w + self.b


class HandRMSNorm(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.w


def _fused(op: str, gone: set[str]):  # type: ignore[no-untyped-def]
    def expect(ops: list[str]) -> None:
        assert ops.count(op) == 1, ops
        assert not gone & set(ops), ops

    return expect


def test_nn_layernorm_torchscript_opset16_stays() -> None:
    # Below opset 17 TorchScript decomposes nn.LayerNorm; LayerNormalization does not exist.
    model = export_torch(torch.nn.LayerNorm(16), (torch.randn(2, 3, 16),), opset=16)
    after, record = run_one(model, "fuse_layer_norm")
    assert not record.changed and "LayerNormalization" not in op_types(after)


def test_hand_layernorm_torchscript() -> None:
    model = export_torch(HandLayerNorm(), (torch.randn(2, 3, 16),), opset=17)
    check_pass(model, "fuse_layer_norm", "fusion",
               expect=_fused("LayerNormalization", {"ReduceMean", "Sqrt", "Div"}))


def test_hand_layernorm_dynamo() -> None:
    model = export_torch(HandLayerNorm(), (torch.randn(2, 3, 16),), opset=18, dynamo=True)
    check_pass(model, "fuse_layer_norm", "fusion", prep=["fold_constants"],
               expect=_fused("LayerNormalization", {"ReduceMean", "Sqrt"}))


def test_layernorm_not_fused_into_rms() -> None:
    # In the default order the LayerNorm goes first; RMS must then find nothing to do.
    import rewrites

    model = export_torch(HandLayerNorm(), (torch.randn(2, 3, 16),), opset=23)
    after, _ = rewrites.run_passes(model, select=["fuse_layer_norm", "fuse_rms_norm"])
    assert op_types(after).count("LayerNormalization") == 1
    assert "RMSNormalization" not in op_types(after)


def test_hand_rmsnorm_opset23() -> None:
    model = export_torch(HandRMSNorm(), (torch.randn(2, 3, 16),), opset=23, dynamo=True)
    check_pass(model, "fuse_rms_norm", "fusion", prep=["fold_constants"],
               expect=_fused("RMSNormalization", {"ReduceMean", "Sqrt", "Pow"}))


def test_rmsnorm_below_23_stays() -> None:
    model = export_torch(HandRMSNorm(), (torch.randn(2, 16),), opset=20)
    after, record = run_one(model, "fuse_rms_norm")
    assert not record.changed and "RMSNormalization" not in op_types(after)
