"""Shared helpers of the rewrite tests: building and exporting models, running a pass, comparing
onnxruntime outputs.  Tolerances live here, one row per kind of pass and dtype."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper

import rewrites
from rewrites import PassRecord

# (atol, rtol) per kind of pass and dtype.
TOLERANCES: dict[tuple[str, str], tuple[float, float]] = {
    # Structural passes change no arithmetic: outputs must agree to float32 rounding noise.
    ("structural", "float32"): (1e-6, 0.0),
    # Fusions evaluate the same formula as one kernel, with a different operation order (and
    # float32 statistics); differences are a few ulps of values of order 1-10.
    ("fusion", "float32"): (1e-5, 1e-5),
}


def tol(kind: str, dtype: str = "float32") -> tuple[float, float]:
    return TOLERANCES[(kind, dtype)]


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[tuple[str, int, Sequence[int | str] | None]],
    outputs: Sequence[str],
    *,
    opset: int = 20,
    initializers: Sequence[onnx.TensorProto] = (),
) -> onnx.ModelProto:
    """A one-graph model; outputs are float32 with unknown shape unless inference fills them."""
    graph = helper.make_graph(
        list(nodes), "g",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    # The full checker wants output shapes; let ONNX inference fill the declared outputs.
    return onnx.shape_inference.infer_shapes(model)


def const(name: str, value: object, dtype: type = np.float32) -> onnx.NodeProto:
    """A Constant node holding ``value``."""
    return helper.make_node(
        "Constant", [], [name], value=onnx.numpy_helper.from_array(np.asarray(value, dtype))
    )


def export_torch(
    module: torch.nn.Module, args: tuple[torch.Tensor, ...], *, opset: int, dynamo: bool = False
) -> onnx.ModelProto:
    """Export with the TorchScript (default) or dynamo exporter, without the exporter's own
    optimizer for dynamo (so the written-out patterns survive)."""
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            program = torch.onnx.export(
                module, args, dynamo=True, opset_version=opset, optimize=False, verbose=False
            )
            assert program is not None
            return program.model_proto
        buffer = io.BytesIO()
        torch.onnx.export(module, args, buffer, dynamo=False, opset_version=opset)
        return onnx.load_from_string(buffer.getvalue())


def ort_run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run with onnxruntime's own graph fusions off, so the model is evaluated as written
    (ORT 1.32's GeluFusion rejects a TorchScript export whose `0.5 * x` two GELUs share)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {n: feeds[n] for n in names})


def random_feeds(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded standard-normal float32 inputs for every graph input of static shape."""
    rng = np.random.default_rng(seed)
    feeds = {}
    initializer_names = {i.name for i in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializer_names:
            continue
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
        feeds[value.name] = rng.standard_normal(dims).astype(np.float32)
    return feeds


def op_types(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def run_one(model: onnx.ModelProto, name: str) -> tuple[onnx.ModelProto, PassRecord]:
    after, records = rewrites.run_passes(model, select=[name])
    assert [r.name for r in records] == [name]
    return after, records[0]


def max_abs_diff(a: onnx.ModelProto, b: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(ort_run(a, feeds), ort_run(b, feeds)))


def check_pass(
    model: onnx.ModelProto,
    name: str,
    kind: str,
    *,
    expect: Callable[[list[str]], None] | None = None,
    feeds: dict[str, np.ndarray] | None = None,
    prep: Sequence[str] = (),
) -> onnx.ModelProto:
    """Run pass ``name``: checker (full), structure via ``expect``, ORT parity at the kind's
    tolerance, and idempotence (a second run changes nothing).  Returns the rewritten model.

    ``prep`` passes run first (e.g. fold_constants for dynamo exports, whose constants are
    ``Cast(Constant)`` until folded); parity is always against the untouched ``model``."""
    source = model
    if prep:
        model, _ = rewrites.run_passes(model, select=list(prep))
    after, record = run_one(model, name)
    onnx.checker.check_model(after, full_check=True)
    if expect is not None:
        expect(op_types(after))
    feeds = feeds if feeds is not None else random_feeds(source)
    atol, rtol = tol(kind)
    for want, got in zip(ort_run(source, feeds), ort_run(after, feeds), strict=True):
        np.testing.assert_allclose(got, want, atol=atol, rtol=rtol)
    again, second = run_one(after, name)
    assert not second.changed, f"{name} is not idempotent"
    assert onnx.printer.to_text(again.graph) == onnx.printer.to_text(after.graph)
    assert record.nodes_after == len(after.graph.node) or any(
        n.attribute for n in after.graph.node if n.op_type in ("If", "Loop", "Scan")
    )
    return after
