"""Local decomposition equals the dynamo exporter's whole-program decomposition, or declines.

Each model is exported twice, with and without :mod:`pipeline.exporting.local_decompose`; the
ONNX graphs must hold the same ops and both must match PyTorch in onnxruntime.  The edited
programs are also run as PyTorch programs (``ExportedProgram.module()``) against eager mode,
which checks the in-place rewrites independently of ONNX.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator

import numpy as np
import onnx
import pytest
import torch
from torch.onnx._internal.exporter import _decomp

from pipeline.exporting import decompose_rules, exporters, local_decompose, torchlib_cache, validate
from tests.exporting.support import tol


class _InPlace(torch.nn.Module):
    """relu_/add_/hardtanh_ on intermediates, a read before the mutation, eval dropout_."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        before = y * 3  # reads y before the in-place relu: must see the old values
        y.relu_()
        y += before
        torch.nn.functional.hardtanh_(y, -1.0, 2.0)
        pooled = torch.nn.functional.adaptive_avg_pool2d(y, 1).flatten(1)
        return torch.nn.functional.dropout(pooled, 0.5, training=False, inplace=True) + 1


class _ChannelsLastPool(torch.nn.Module):
    """adaptive_avg_pool2d of a permuted (channels-last strided) tensor, as in ConvNeXt."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.nn.functional.gelu(x).permute(0, 3, 1, 2)
        return torch.nn.functional.adaptive_avg_pool2d(y, 1).flatten(1) * 2


class _Casts(torch.nn.Module):
    """``Tensor.to`` (an op that may alias) and a multi-output op."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = (x * 4).to(torch.int32).to(torch.float32)
        mean = torch.nn.functional.layer_norm(low, (x.shape[-1],))
        return mean, torch.var_mean(x, dim=1)[0]


class _MutatesInput(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x.add_(1)
        return x * 2


class _MutatesView(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        v = y[:, :2]
        v.relu_()  # writes through a view: y changes too
        return y + 1


CASES = {
    "in_place": (_InPlace, (torch.randn(2, 3, 8, 8),)),
    "casts": (_Casts, (torch.randn(3, 7),)),
}


@contextlib.contextmanager
def _stock() -> Iterator[bool]:
    yield False


def _export(model: torch.nn.Module, args: tuple[torch.Tensor, ...], local: bool) -> onnx.ModelProto:
    installed = local_decompose.installed
    if not local:
        local_decompose.installed = _stock  # type: ignore[assignment]  # same protocol
    try:
        names = [f"x{i}" for i in range(len(args))]
        proto, _ = exporters._run_dynamo(model, args, 18, names, None, {})
    finally:
        local_decompose.installed = installed  # type: ignore[assignment]
    return proto


def _histogram(proto: onnx.ModelProto) -> collections.Counter[str]:
    return collections.Counter(n.op_type for n in proto.graph.node)


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_onnx_as_whole_program_decomposition(name: str) -> None:
    cls, args = CASES[name]
    model = cls().eval()
    local, stock = _export(model, args, True), _export(model, args, False)
    assert _histogram(local) == _histogram(stock)
    _check_parity(local, model, args)


def _check_parity(proto: onnx.ModelProto, model: torch.nn.Module,
                  args: tuple[torch.Tensor, ...]) -> None:
    expected = validate.torch_outputs(model, args)
    assert max(float(np.abs(e).max()) for e in expected) > 1e-3  # not a degenerate reference
    got = validate.run_ort(proto, {f"x{i}": a.numpy() for i, a in enumerate(args)})
    for actual, want in zip(got.values(), expected, strict=True):
        np.testing.assert_allclose(actual, want, **tol())


def test_layout_only_restride_dropped() -> None:
    """Adaptive pooling of a channels-last tensor: the whole-program path keeps the decomposition's
    stride-restoring as_strided (a Gather in ONNX); the local path drops it, matching PyTorch."""
    model, args = _ChannelsLastPool().eval(), (torch.randn(1, 5, 5, 6),)
    local, stock = _export(model, args, True), _export(model, args, False)
    assert "Gather" in _histogram(stock) and "Gather" not in _histogram(local)
    assert len(local.graph.node) < len(stock.graph.node)
    _check_parity(local, model, args)


def _program_and_tables(model: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> tuple:
    program = torch.export.export(model, args)
    registry = torchlib_cache.registry_for(18)
    registered = set(_decomp.get_onnx_implemented_overloads(registry))
    return program, registered, _decomp.create_onnx_friendly_decomposition_table(registered)


def test_edited_program_runs_like_eager() -> None:
    """The rewritten in-place chain (read-before-write included) computes what eager mode does."""
    torch.manual_seed(0)
    model = _InPlace().eval()
    args = (torch.randn(2, 3, 8, 8),)
    with torch.no_grad():
        want = model(*args)
    program, registered, table = _program_and_tables(model, args)
    assert local_decompose.decompose_locally(program, registered, table) is program
    targets = {n.target for n in program.graph.nodes if n.op == "call_function"}
    assert not any(local_decompose._mutates(t) for t in targets if hasattr(t, "_schema"))
    assert all(t in registered or not hasattr(t, "_schema") for t in targets)
    with torch.no_grad():
        got = program.module()(*args)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cls", [_MutatesInput, _MutatesView], ids=["input", "view"])
def test_declines_and_leaves_graph_untouched(cls: type[torch.nn.Module]) -> None:
    args = (torch.randn(2, 4),)
    program, registered, table = _program_and_tables(cls(), args)
    before = str(program.graph)
    assert local_decompose.decompose_locally(program, registered, table) is None
    assert str(program.graph) == before


def test_view_mutation_still_exports_right() -> None:
    """A declined graph goes through the stock decomposition: parity holds."""
    model, args = _MutatesView(), (torch.randn(2, 4),)
    want = validate.torch_outputs(_MutatesView(), (args[0].clone(),))
    got = validate.run_ort(_export(model, (args[0].clone(),), True), {"x0": args[0].numpy()})
    np.testing.assert_allclose(next(iter(got.values())), want[0], **tol())


def test_restride_only() -> None:
    """Only an as_strided that keeps every element where it is counts as a layout change."""
    graph = torch.fx.Graph()
    source = graph.placeholder("x")
    source.meta["val"] = torch.empty(1, 6, 1, 1)
    same = graph.call_function(torch.ops.aten.as_strided_.default, (source, [1, 6, 1, 1], [6, 1, 6, 6]))
    moved = graph.call_function(torch.ops.aten.as_strided.default, (source, [1, 6, 1, 1], [6, 2, 6, 6]))
    resized = graph.call_function(torch.ops.aten.as_strided.default, (source, [1, 3, 1, 1], [6, 1, 6, 6]))
    assert local_decompose._restride_only(same)
    assert not local_decompose._restride_only(moved)
    assert not local_decompose._restride_only(resized)


def test_out_of_place_twins() -> None:
    aten = torch.ops.aten
    assert local_decompose._out_of_place(aten.relu_.default) is aten.relu.default
    assert local_decompose._out_of_place(aten.add_.Tensor) is aten.add.Tensor
    assert local_decompose._out_of_place(aten.hardtanh_.default) is aten.hardtanh.default
    assert local_decompose._out_of_place(aten.relu.default) is None  # not in place
    assert local_decompose._out_of_place(aten.t_.default) is None  # an in-place view
    assert local_decompose._out_of_place(aten.normal_.default) is None  # no same-argument twin


class _Norms(torch.nn.Module):
    """Eval batch norms (affine and not) around a global average pool, 3-D and 4-D."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = torch.nn.BatchNorm2d(4)
        self.bare = torch.nn.BatchNorm2d(4, affine=False)
        self.bn1d = torch.nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.adaptive_avg_pool2d(self.bn(x), [1, 1])
        flat = torch.nn.functional.adaptive_avg_pool2d(x[0], 1)
        return self.bare(pooled).flatten(1) + self.bn1d(flat.flatten(1).T).sum()


def _targets(graph: torch.fx.Graph) -> list[tuple[object, object]]:
    return [(n.target, tuple(a if not isinstance(a, torch.fx.Node) else "node" for a in n.args))
            for n in graph.nodes if n.op == "call_function"]


def test_rules_build_what_the_trace_builds() -> None:
    """batch_norm and global pooling, decomposed by the hand-built rules, give the traced graph."""
    model, args = _Norms().eval(), (torch.randn(2, 4, 5, 5),)
    ruled, registered, table = _program_and_tables(model, args)
    traced, _, _ = _program_and_tables(model, args)
    rules = dict(decompose_rules.RULES)
    for op in rules:
        assert any(n.target is op for n in ruled.graph.nodes), op  # the case exercises the rule
    try:
        decompose_rules.RULES.clear()
        assert local_decompose.decompose_locally(traced, registered, table) is traced
    finally:
        decompose_rules.RULES.update(rules)
    assert local_decompose.decompose_locally(ruled, registered, table) is ruled
    assert _targets(ruled.graph) == _targets(traced.graph)
    for a, b in zip(ruled.graph.nodes, traced.graph.nodes, strict=True):
        va, vb = a.meta.get("val"), b.meta.get("val")
        if isinstance(vb, torch.Tensor):
            assert (va.shape, va.dtype) == (vb.shape, vb.dtype), a.name
    with torch.no_grad():
        torch.testing.assert_close(ruled.module()(*args), model(*args), rtol=1e-6, atol=1e-6)


def test_rules_decline_other_forms() -> None:
    """Training-mode batch norm and non-global pooling are left to the trace."""
    graph = torch.fx.Graph()
    x, mean, var = (graph.placeholder(n) for n in ("x", "mean", "var"))
    train = graph.call_function(torch.ops.aten.batch_norm.default,
                                (x, None, None, mean, var, True, 0.1, 1e-5, True))
    pool = graph.call_function(torch.ops.aten.adaptive_avg_pool2d.default, (x, [2, 2]))
    assert decompose_rules.build(train, train.target) is None
    assert decompose_rules.build(pool, pool.target) is None


class _SharedNormInputs(torch.nn.Module):
    """batch_norm reading one buffer as both running mean and variance, one parameter as both
    weight and bias: a node passed twice to the op being decomposed."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("stat", torch.rand(3) + 0.5)
        self.scale = torch.nn.Parameter(torch.randn(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.batch_norm(x, self.stat, self.stat, self.scale, self.scale)


@pytest.mark.parametrize("ruled", [True, False], ids=["rule", "trace"])
def test_repeated_inputs_splice_in_place(ruled: bool) -> None:
    model, args = _SharedNormInputs().eval(), (torch.randn(2, 3, 4),)
    program, registered, table = _program_and_tables(model, args)
    rules = dict(decompose_rules.RULES)
    try:
        if not ruled:
            decompose_rules.RULES.clear()
        assert local_decompose.decompose_locally(program, registered, table) is program
    finally:
        decompose_rules.RULES.update(rules)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(*args), model(*args), rtol=1e-6, atol=1e-6)
