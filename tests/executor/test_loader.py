"""Loading programs: MIL Program, MLModel (in memory and from spec + weights), .mlpackage paths."""

from __future__ import annotations

import coremltools as ct
import numpy as np
import pytest
from coremltools.converters.mil import Builder as mb

from pipeline.errors import ExecutorError, ModelLoadError
from pipeline.executor import execute, load
from pipeline.executor.loader import InputConstraint, constraints_from_spec
from tests.executor.support import rand, tol

W = np.random.default_rng(3).standard_normal((4, 3)).astype(np.float32)
B = np.random.default_rng(4).standard_normal(4).astype(np.float32)


def _program():
    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3))], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.relu(x=mb.linear(x=x, weight=W, bias=B))

    return prog


def _expected(x):
    return np.maximum(x @ W.T + B, 0)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = ct.convert(_program(), convert_to="mlprogram",
                       compute_precision=ct.precision.FLOAT32)
    path = tmp_path_factory.mktemp("pkg") / "lin.mlpackage"
    model.save(str(path))
    return model, path


def test_program_is_used_as_is():
    prog = _program()
    assert load(prog).program is prog


def test_mlmodel_in_memory_uses_its_program(saved):
    model, _ = saved
    assert load(model).program is model._mil_program
    (out,) = execute(model, {"x": (x := rand(2, 3))}).values()
    np.testing.assert_allclose(out, _expected(x), **tol(np.float32))


def test_mlmodel_without_program_is_read_from_spec_and_weights(saved):
    _, path = saved
    model = ct.models.MLModel(str(path), skip_model_load=True)
    assert getattr(model, "_mil_program", None) is None
    x = rand(2, 3)
    (out,) = execute(model, {"x": x}).values()
    np.testing.assert_allclose(out, _expected(x), **tol(np.float32))


@pytest.mark.parametrize("as_str", [True, False])
def test_saved_package_path(saved, as_str):
    _, path = saved
    x = rand(2, 3, seed=9)
    (out,) = execute(str(path) if as_str else path, {"x": x}).values()
    np.testing.assert_allclose(out, _expected(x), **tol(np.float32))


def test_missing_path(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load(tmp_path / "nope.mlpackage")


def test_corrupt_package(tmp_path):
    bad = tmp_path / "bad.mlpackage"
    bad.mkdir()
    (bad / "Manifest.json").write_text("{ not json")
    with pytest.raises(ExecutorError, match="not a readable Core ML model"):
        load(bad)


def test_neural_network_model_is_refused(tmp_path):
    spec = ct.proto.Model_pb2.Model()
    spec.specificationVersion = 4
    spec.neuralNetwork.SetInParent()
    path = tmp_path / "nn.mlmodel"
    path.write_bytes(spec.SerializeToString())
    with pytest.raises(ExecutorError, match="'neuralNetwork' model; only ML Programs"):
        load(path)


def test_wrong_kind_of_object():
    with pytest.raises(ExecutorError, match="cannot run a int"):
        load(42)


def test_flexible_shapes_are_read_from_the_spec():
    spec = ct.proto.Model_pb2.Model()
    ranged = spec.description.input.add()
    ranged.name = "a"
    arr = ranged.type.multiArrayType
    arr.shape.extend([1, 3])
    for low, high in ((1, 8), (3, -1)):
        r = arr.shapeRange.sizeRanges.add()
        r.lowerBound, r.upperBound = low, high
    enum = spec.description.input.add()
    enum.name = "b"
    for shape in ((1, 2), (2, 2)):
        enum.type.multiArrayType.enumeratedShapes.shapes.add().shape.extend(shape)
    found = constraints_from_spec(spec)
    assert found["a"] == InputConstraint("a", ranges=[(1, 8), (3, None)], default=(1, 3))
    assert found["b"] == InputConstraint("b", shapes=[(1, 2), (2, 2)])
    assert found["a"].check((8, 100)) is None
    assert "outside the allowed range [1, 8]" in found["a"].check((9, 3))
    assert found["b"].check((2, 2)) is None
    assert "not one of the enumerated shapes" in found["b"].check((3, 2))
