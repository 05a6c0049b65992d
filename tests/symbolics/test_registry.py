"""The registry API: translation_table, register_legacy, include, used_in, user entries,
the custom-domain HardTanh, and the README example (run exactly as documented)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

import symbolics
from pipeline.errors import ExportError
from tests.readme import python_blocks
from tests.symbolics._support import (
    assert_parity,
    export_dynamo,
    export_legacy,
    op_types,
    run_ort,
)


def test_table_maps_overloads_and_skips_opt_in() -> None:
    table = symbolics.translation_table(18)
    assert torch.ops.aten.linalg_inv.default in table
    assert torch.ops.aten.hardtanh.default not in table
    assert torch.ops.aten.hardtanh.default in symbolics.translation_table(
        18, include=["aten::hardtanh"])


def test_opset_gate() -> None:
    assert torch.ops.torchvision.deform_conv2d.default not in symbolics.translation_table(18)
    assert torch.ops.torchvision.deform_conv2d.default in symbolics.translation_table(19)


def test_unknown_include_is_a_pipeline_error() -> None:
    with pytest.raises(ExportError, match="unknown symbolic"):
        symbolics.translation_table(18, include=["aten::nope"])


def test_register_legacy_is_idempotent() -> None:
    try:
        first = symbolics.register_legacy(18)
        assert symbolics.register_legacy(18) == first
        assert "aten::linalg_inv" in first and "aten::hardtanh" not in first
    finally:
        symbolics.unregister_legacy()


def test_bad_name_is_a_pipeline_error() -> None:
    with pytest.raises(ExportError, match="namespace::op"):
        symbolics.add_symbolic("hardtanh", opset=18, dynamo=lambda x: x)


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_hardtanh_custom_domain(exporter: str) -> None:
    """Opt-in: one pipeline.custom::HardTanh node with the attributes; body runs in ORT."""
    fn = lambda x: F.hardtanh(x, -0.5, 0.7)
    args = (torch.randn(3, 8),)
    export = export_dynamo if exporter == "dynamo" else export_legacy
    model = export(fn, args, include=["aten::hardtanh"])
    (node,) = [n for n in model.graph.node if n.domain == symbolics.CUSTOM_DOMAIN]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert node.op_type == "HardTanh" and attrs == pytest.approx({"min_val": -0.5, "max_val": 0.7})
    assert "aten::hardtanh" in symbolics.used_in(model)
    symbolics.attach_functions(model)
    assert_parity(model, fn, args)


def test_hardtanh_semantics_from_domain_md() -> None:
    """DOMAIN.md: Y = min(max(X, min_val), max_val); numpy from the text vs torch relu6."""
    x = torch.randn(64) * 8
    expected = np.minimum(np.maximum(x.numpy(), 0.0), 6.0)
    np.testing.assert_array_equal(F.relu6(x).numpy(), expected)
    model = export_dynamo(F.relu6, (x,), include=["aten::hardtanh", "aten::relu6"])
    assert "pipeline.custom::HardTanh" in op_types(model)
    np.testing.assert_array_equal(run_ort(symbolics.attach_functions(model), (x,))[0], expected)


def test_default_export_has_no_custom_ops() -> None:
    model = export_dynamo(lambda x: F.hardtanh(x, -0.5, 0.7), (torch.randn(3, 8),))
    assert op_types(model) == {"Clip"}


def test_readme_example_runs() -> None:
    """The README's example, executed verbatim."""
    blocks = python_blocks("Custom symbolics")
    assert blocks, "the README's symbolics section has no python example"
    namespace: dict[str, object] = {}
    try:
        exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102
    finally:
        symbolics.SYMBOLICS.remove("mylib::mish_like", user=True)
        symbolics.unregister_legacy(["mylib::mish_like"])
    assert namespace["ok"] is True
