"""Stage two as a whole: interface adapter, names, shapes, targets, backends, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

import pipeline
from pipeline.errors import LoweringError, ModelLoadError, UnsupportedOpError, ValidationError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.node import Node
from pipeline.lowering.registry import HANDLERS, onnx_op


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _add_model(in_name="x", out_name="y", shape=(2, 3)):
    return _model(
        [helper.make_node("Add", [in_name, in_name], [out_name], name="add")],
        [helper.make_tensor_value_info(in_name, T.FLOAT, list(shape))],
        [helper.make_tensor_value_info(out_name, T.FLOAT, list(shape))],
    )


def test_names_are_kept_where_core_ml_allows_and_mapped_otherwise() -> None:
    kept = pipeline.lower(_add_model("x", "logits"))
    spec = kept.mlmodel.get_spec()
    assert [i.name for i in spec.description.input] == ["x"]
    assert [o.name for o in spec.description.output] == ["logits"]

    renamed = pipeline.lower(_add_model("input.1", "out/0"))
    spec = renamed.mlmodel.get_spec()
    assert [i.name for i in spec.description.input] == ["input_1"]
    assert [o.name for o in spec.description.output] == ["out_0"]
    mapping = json.loads(spec.description.metadata.userDefined["pipeline.onnx_names"])
    assert mapping == {"input.1": "input_1", "out/0": "out_0"}
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(renamed.predict({"input.1": x})["out/0"], 2 * x)
    assert any("input.1" in w for w in renamed.report["warnings"])


def test_mil_values_carry_onnx_tensor_names() -> None:
    model = _model(
        [helper.make_node("Add", ["x", "x"], ["/block/Add_output_0"], name="/block/Add"),
         helper.make_node("Mul", ["/block/Add_output_0", "x"], ["y"], name="/block/Mul")],
        [helper.make_tensor_value_info("x", T.FLOAT, [4])],
        [helper.make_tensor_value_info("y", T.FLOAT, [4])],
    )
    result = pipeline.lower(model)
    names = {v.name for op in result.program.functions["main"].operations for v in op.outputs}
    assert "/block/Add_output_0" in names or "_block_Add_output_0" in names
    assert [r["node"] for r in result.report["nodes"]] == ["/block/Add", "/block/Mul"]


def test_scalar_and_bool_and_int64_interface() -> None:
    model = _model(
        [helper.make_node("Greater", ["s", "k"], ["flag"], name="gt"),
         helper.make_node("Add", ["k", "k"], ["k2"], name="add")],
        [helper.make_tensor_value_info("s", T.INT64, []), helper.make_tensor_value_info("k", T.INT64, [3])],
        [helper.make_tensor_value_info("flag", T.BOOL, [3]), helper.make_tensor_value_info("k2", T.INT64, [3])],
    )
    result = pipeline.lower(model, feeds={"s": np.array(2, np.int64), "k": np.array([1, 2, 3], np.int64)})
    assert result.parity.ok
    out = result.predict({"s": np.array(2, np.int64), "k": np.array([1, 2, 3], np.int64)})
    assert out["flag"].dtype == np.bool_ and out["flag"].tolist() == [True, False, False]
    assert out["k2"].dtype == np.int64 and out["k2"].tolist() == [2, 4, 6]


def test_symbolic_dims_need_a_declaration() -> None:
    model = _add_model(shape=("batch", 3))
    with pytest.raises(LoweringError, match=r"--flexible x:0=MIN..MAX"):
        pipeline.lower(model)


def test_flexible_and_enumerated_shapes() -> None:
    model = _add_model(shape=("batch", 3))
    ranged = pipeline.lower(model, flexible={"x": {0: (1, 8)}})
    rng = ranged.mlmodel.get_spec().description.input[0].type.multiArrayType.shapeRange.sizeRanges
    assert (rng[0].lowerBound, rng[0].upperBound) == (1, 8)
    assert ranged.parity.ok and ranged.parity.outputs[0].shape == (2, 3)  # checked off the default size
    enum = pipeline.lower(model, enumerated={"x": [(1, 3), (4, 3)]})
    shapes = enum.mlmodel.get_spec().description.input[0].type.multiArrayType.enumeratedShapes.shapes
    assert [list(s.shape) for s in shapes] == [[1, 3], [4, 3]]
    assert enum.parity.ok and enum.parity.outputs[0].shape == (4, 3)


def test_neural_network_backend_and_target_rules(tmp_path: Path) -> None:
    nn = pipeline.lower(_add_model(), tmp_path / "m.mlmodel", backend="neuralnetwork")
    assert nn.path is not None and nn.path.suffix == ".mlmodel" and nn.path.is_file()
    assert nn.mlmodel.get_spec().WhichOneof("Type") == "neuralNetwork"
    assert nn.parity.ok
    with pytest.raises(LoweringError, match="neuralnetwork backend supports targets up to iOS14"):
        pipeline.lower(_add_model(), backend="neuralnetwork", target="iOS16")
    with pytest.raises(LoweringError, match="ML Programs need iOS15"):
        pipeline.lower(_add_model(), target="iOS14")


@pytest.fixture
def needs_ios17():
    """A test-only op whose handler needs iOS17."""

    @onnx_op("NeedsIOS17", domain="test.targets")
    def _handler(ctx: LowerContext, node: Node):
        ctx.require_target(17, "uses a test op that needs iOS17")
        return ctx.mb.identity(x=node.input(0))

    yield
    HANDLERS.remove("NeedsIOS17", domain="test.targets")


def _custom_model():
    model = _model(
        [helper.make_node("NeedsIOS17", ["x"], ["y"], name="n", domain="test.targets")],
        [helper.make_tensor_value_info("x", T.FLOAT, [2])],
        [helper.make_tensor_value_info("y", T.FLOAT, [2])],
    )
    model.opset_import.append(helper.make_opsetid("test.targets", 1))
    return model


def test_target_is_raised_when_allowed(needs_ios17) -> None:
    result = pipeline.lower(_custom_model(), target="iOS15", verify=False)
    assert result.report["target"] == "iOS17"
    assert any("target raised from iOS15 to iOS17" in w for w in result.report["warnings"])
    with pytest.raises(LoweringError, match="--target iOS17"):
        pipeline.lower(_custom_model(), target="iOS15", raise_target=False, verify=False)


def test_unsupported_op_names_node_op_domain_opset_and_source() -> None:
    node = helper.make_node("NoSuchOp", ["x"], ["y"], name="/enc/NoSuchOp", domain="acme")
    node.metadata_props.add(key="pkg.torch.onnx.stack_trace", value='File "/home/u/net.py", line 42, in forward')
    model = _model([node], [helper.make_tensor_value_info("x", T.FLOAT, [2])],
                   [helper.make_tensor_value_info("y", T.FLOAT, [2])])
    model.opset_import.append(helper.make_opsetid("acme", 3))
    with pytest.raises(UnsupportedOpError) as info:
        pipeline.lower(model)
    text = str(info.value)
    assert "/enc/NoSuchOp" in text and "acme::NoSuchOp" in text and "opset 3" in text and "net.py:42" in text


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such ONNX file"):
        pipeline.lower(tmp_path / "missing.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ModelLoadError):
        pipeline.lower(corrupt)
    good = _add_model().SerializeToString()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises((ModelLoadError, ValidationError)):
        pipeline.lower(truncated)


def test_checker_failure_and_too_new_opset() -> None:
    broken = _model([helper.make_node("Add", ["x", "missing"], ["y"])],
                    [helper.make_tensor_value_info("x", T.FLOAT, [2])],
                    [helper.make_tensor_value_info("y", T.FLOAT, [2])])
    with pytest.raises(ValidationError, match="checker"):
        pipeline.lower(broken)
    too_new = _add_model()
    too_new.opset_import[0].version = 99
    with pytest.raises(ValidationError, match="opset 99"):
        pipeline.lower(too_new)


def test_external_data_outside_the_model_folder_is_refused(tmp_path: Path) -> None:
    weights = numpy_helper.from_array(np.ones(4, np.float32), "w")
    model = _model([helper.make_node("Add", ["x", "w"], ["y"])],
                   [helper.make_tensor_value_info("x", T.FLOAT, [4])],
                   [helper.make_tensor_value_info("y", T.FLOAT, [4])], inits=[weights])
    folder = tmp_path / "m"
    folder.mkdir()
    onnx.save(model, str(folder / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="w.bin", size_threshold=0)
    escaped = onnx.load(str(folder / "m.onnx"), load_external_data=False)
    for entry in escaped.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../outside.bin"
    (tmp_path / "outside.bin").write_bytes((folder / "w.bin").read_bytes())
    onnx.save(escaped, str(folder / "escaped.onnx"))
    with pytest.raises(ModelLoadError, match="outside the model's folder"):
        pipeline.lower(folder / "escaped.onnx")
    assert pipeline.lower(folder / "m.onnx").parity.ok


def test_nothing_partial_is_left_after_a_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.mlpackage"
    bad = _model([helper.make_node("NoSuchOp", ["x"], ["y"], domain="acme")],
                 [helper.make_tensor_value_info("x", T.FLOAT, [2])],
                 [helper.make_tensor_value_info("y", T.FLOAT, [2])])
    bad.opset_import.append(helper.make_opsetid("acme", 1))
    with pytest.raises(UnsupportedOpError):
        pipeline.lower(bad, target)
    assert list(tmp_path.iterdir()) == []
    good = pipeline.lower(_add_model(), target)
    assert good.path == target and (target / "Manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mlpackage"]


def _group_norm_18_model(**attrs):
    x = helper.make_tensor_value_info("x", T.FLOAT, [2, 6, 3, 4])
    y = helper.make_tensor_value_info("y", T.FLOAT, [2, 6, 3, 4])
    rng = np.random.default_rng(18)
    scale = numpy_helper.from_array(rng.uniform(0.5, 2.0, 3).astype(np.float32), "s")
    bias = numpy_helper.from_array(rng.uniform(-1.0, 1.0, 3).astype(np.float32), "b")
    node = helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], name="gn", **attrs)
    model = _model([node], [x], [y], inits=[scale, bias], opset=18)
    model.ir_version = 8
    return model


def test_superseded_schema_is_accepted_at_its_opset_and_malformed_models_are_not() -> None:
    # onnx marks GroupNormalization-18 deprecated (superseded at opset 21), so its checker
    # rejects it even at opset 18 where the spec defines it; the loader accepts it.
    model = _group_norm_18_model(num_groups=3, epsilon=1e-3)
    with pytest.raises(onnx.checker.ValidationError, match="deprecated"):
        onnx.checker.check_model(model, full_check=True)
    before = model.SerializeToString()
    x = np.random.default_rng(1).uniform(-2, 2, (2, 6, 3, 4)).astype(np.float32)
    result = pipeline.lower(model, target="iOS16", feeds={"x": x})
    assert model.SerializeToString() == before  # the caller's proto is left as it was
    assert result.parity.ok
    # Independent reference: statistics per (n, group of 2 channels), scale/bias per group.
    s, b = (numpy_helper.to_array(t) for t in model.graph.initializer)
    g = x.reshape(2, 3, -1).astype(np.float64)
    norm = (g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-3)
    expected = (norm * s[:, None] + b[:, None]).reshape(x.shape)
    np.testing.assert_allclose(result.predict({"x": x})["y"], expected, atol=1e-5, rtol=1e-4)

    # The superseded node is still verified: a missing required attribute, an unknown one,
    # an input of the wrong type.
    with pytest.raises(ValidationError, match="num_groups"):
        pipeline.lower(_group_norm_18_model())
    with pytest.raises(ValidationError, match="'foo'"):
        pipeline.lower(_group_norm_18_model(num_groups=3, foo=1))
    wrong_type = _group_norm_18_model(num_groups=3)
    wrong_type.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.ones(3, np.int64), "s"))
    with pytest.raises(ValidationError, match="checker"):
        pipeline.lower(wrong_type)
    # Ops the spec removed at the model's opset stay rejected (Upsample from opset 10).
    upsample = _model(
        [helper.make_node("Upsample", ["x", "scales"], ["y"])],
        [helper.make_tensor_value_info("x", T.FLOAT, [1, 1, 2, 2])],
        [helper.make_tensor_value_info("y", T.FLOAT, [1, 1, 4, 4])],
        inits=[numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")],
        opset=10,
    )
    with pytest.raises(ValidationError, match="deprecated"):
        pipeline.lower(upsample)
