"""The cached torchlib registry equals torch's stock one; custom tables stay per call."""

from __future__ import annotations

import functools

import numpy as np
import onnx
import pytest
import torch
from onnxscript import opset18 as op
from torch.onnx._internal.exporter import _decomp, _registration

from pipeline.exporting import lazy_signatures, torchlib_cache, validate
from tests.exporting.support import tol

OPSET = 18


def _stock_from_torchlib() -> object:
    return _registration.ONNXRegistry.__dict__["from_torchlib"].__func__


def _row(meta: _registration.OnnxDecompMeta) -> tuple[object, ...]:
    """A registry entry's fields; the signature is compared on its own (inferred lazily)."""
    return (meta.fx_target, meta.onnx_function, meta.is_custom, meta.is_complex,
            meta.opset_introduced, meta.device)


def test_fast_listing_matches_onnxscript() -> None:
    apis = torchlib_cache._apis_module(_registration)
    assert apis is not None, "torch reads get_torchlib_ops from an unexpected place"
    stock = apis.get_torchlib_ops
    fast = torchlib_cache.fast_torchlib_ops(stock)()
    want = stock()  # re-parses every traced function's source to read its domain
    assert len(fast) == len(want) > 400
    for got, ref in zip(fast, want, strict=True):
        assert (got.qualified_name, got.function, got.name, got.is_complex) == (
            ref.qualified_name, ref.function, ref.name, ref.is_complex)
        assert got.domain == ref.domain, got.qualified_name


def test_cached_registry_equals_stock() -> None:
    cached = torchlib_cache.registry_for(OPSET)
    stock = _stock_from_torchlib()(_registration.ONNXRegistry, OPSET)
    assert cached.opset_version == stock.opset_version == OPSET
    assert cached.functions.keys() == stock.functions.keys()
    for target, metas in stock.functions.items():
        assert [_row(m) for m in cached.functions[target]] == [_row(m) for m in metas], target
        for meta in metas:  # what the builder reads on first use equals the eager inference
            if meta.skip_signature_inference:  # torch's own higher-order-op entries
                continue
            assert meta.signature is not None, target
            assert str(lazy_signatures.infer(meta.onnx_function)) == str(meta.signature), target
            assert meta.onnx_function._pt_onnx_signature is not None
    again = torchlib_cache.registry_for(OPSET)
    assert again is not cached and again.functions is not cached.functions
    assert all(again.functions[k] is not v for k, v in cached.functions.items())


def custom_relu(x):  # type: ignore[no-untyped-def]  # onnxscript traces it
    """relu as Max(x, 0): a node the stock translation never emits for aten.relu."""
    return op.Max(x, op.CastLike(op.Constant(value_float=0.0), x))


class _Relu(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) * 2


def _export(table: dict[object, object] | None) -> onnx.ModelProto:
    x = torch.randn(2, 3)
    with torchlib_cache.cached_registry() as installed:
        assert installed
        program = torch.onnx.export(
            _Relu().eval(), (x,), dynamo=True, verbose=False, opset_version=OPSET,
            input_names=["x"], custom_translation_table=table,
        )
    model = program.model_proto
    got = next(iter(validate.run_ort(model, {"x": x.numpy()}).values()))
    np.testing.assert_allclose(got, np.maximum(x.numpy(), 0) * 2, **tol())
    return model


def test_custom_table_applies_per_call_only() -> None:
    relu = torch.ops.aten.relu.default
    custom = _export({relu: custom_relu})
    assert "Max" in {n.op_type for n in custom.graph.node}
    plain = _export(None)
    ops = {n.op_type for n in plain.graph.node}
    assert "Relu" in ops and "Max" not in ops
    template = torchlib_cache.registry_for(OPSET)
    assert not any(m.is_custom for m in template.get_decomps(relu))


def test_installs_and_restores_from_torchlib() -> None:
    before = _registration.ONNXRegistry.__dict__["from_torchlib"]
    with torchlib_cache.cached_registry() as installed:
        assert installed
        assert _registration.ONNXRegistry.__dict__["from_torchlib"] is not before
        built = _registration.ONNXRegistry.from_torchlib(opset_version=OPSET)
        assert built.functions.keys() == torchlib_cache.registry_for(OPSET).functions.keys()
    assert _registration.ONNXRegistry.__dict__["from_torchlib"] is before


def test_unknown_layout_falls_back_to_stock(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _registration.ONNXRegistry.__dict__["from_torchlib"]
    monkeypatch.setattr(torchlib_cache, "_registration", lambda: None)
    with torchlib_cache.cached_registry() as installed:
        assert not installed
        assert _registration.ONNXRegistry.__dict__["from_torchlib"] is before


def _decomp_rows(table: dict[object, object]) -> dict[object, object]:
    """Decompositions by op; torch wraps some in a fresh partial of a fresh closure each call."""
    return {op_: (fn.func.__code__, fn.args, tuple(sorted(fn.keywords.items(), key=str)))
            if isinstance(fn, functools.partial) else fn for op_, fn in table.items()}


def test_decomposition_table_memoized_per_call_copy() -> None:
    stock = _decomp.create_onnx_friendly_decomposition_table
    ops = set(_decomp.get_onnx_implemented_overloads(torchlib_cache.registry_for(OPSET)))
    memo = torchlib_cache._memoized_decompositions(stock)
    first, second = memo(ops), memo(ops)
    assert first == second and first is not second
    assert _decomp_rows(first) == _decomp_rows(stock(ops))
    first.clear()
    assert memo(ops) == second


def test_cached_registry_defers_signatures() -> None:
    """Entries of the cached registry carry no eagerly inferred signature; a function's
    signature is inferred on first read and kept."""
    torchlib_cache._TEMPLATES.clear()
    cached = torchlib_cache.registry_for(OPSET)
    metas = [m for ms in cached.functions.values() for m in ms
             if not m.is_custom and not m.skip_signature_inference]
    # torch's own few torchlib entries are built (and inferred) when torch imports them
    assert sum(m.signature is None for m in metas) > 400
    function = cached.get_decomps(torch.ops.aten.abs.default)[0].onnx_function
    first = function._pt_onnx_signature
    assert first is function._pt_onnx_signature  # kept, not re-inferred
    assert [p.name for p in first.params] == ["self"]
