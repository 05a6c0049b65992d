"""``execute``: input checks and casts, output selection, errors, plan caching, round trips."""

from __future__ import annotations

import coremltools as ct
import numpy as np
import pytest
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import get_new_symbol, types

import pipeline
from pipeline.errors import ExecutorError, PipelineError, UnsupportedMILOpError
from pipeline.executor import execute, runner
from pipeline.registry import Registry
from tests.executor.support import rand, tol


def _two_outputs(dtype=types.fp32):
    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3), dtype=dtype),
                             mb.TensorSpec(shape=(2, 3), dtype=dtype)],
                opset_version=ct.target.iOS15)
    def prog(x, y):
        return mb.add(x=x, y=y, name="total"), mb.mul(x=x, y=y, name="product")

    return prog


def _int_program():
    @mb.program(input_specs=[mb.TensorSpec(shape=(3,), dtype=types.int32)],
                opset_version=ct.target.iOS15)
    def prog(i):
        return mb.add(x=i, y=np.int32(1), name="next")

    return prog


def test_outputs_by_name_in_program_order_and_selection():
    x, y = rand(2, 3, seed=1), rand(2, 3, seed=2)
    got = execute(_two_outputs(), {"x": x, "y": y})
    assert list(got) == ["total", "product"]
    np.testing.assert_allclose(got["total"], x + y, **tol(np.float32))
    np.testing.assert_allclose(got["product"], x * y, **tol(np.float32))
    only = execute(_two_outputs(), {"x": x, "y": y}, outputs=["product"])
    assert list(only) == ["product"]
    with pytest.raises(ExecutorError, match=r"unknown outputs \['nope'\]"):
        execute(_two_outputs(), {"x": x, "y": y}, outputs=["nope"])


def test_public_api_forwards_to_the_executor():
    x, y = rand(2, 3, seed=1), rand(2, 3, seed=2)
    got = pipeline.execute(_two_outputs(), {"x": x, "y": y}, outputs=["total"])
    np.testing.assert_allclose(got["total"], x + y, **tol(np.float32))


def test_missing_and_unknown_inputs():
    with pytest.raises(ExecutorError, match=r"missing inputs \['y'\]"):
        execute(_two_outputs(), {"x": rand(2, 3)})
    with pytest.raises(ExecutorError, match=r"unknown inputs \['z'\]"):
        execute(_two_outputs(), {"x": rand(2, 3), "y": rand(2, 3), "z": rand(1)})


@pytest.mark.parametrize("shape,match", [((2, 3, 1), "declares rank 2"), ((2, 4), "dim 1 must be 3")])
def test_wrong_shapes(shape, match):
    with pytest.raises(ExecutorError, match=match):
        execute(_two_outputs(), {"x": rand(*shape), "y": rand(2, 3)})


def test_symbolic_dims_accept_any_consistent_size():
    n = get_new_symbol()

    @mb.program(input_specs=[mb.TensorSpec(shape=(n, 3)), mb.TensorSpec(shape=(n, 3))])
    def prog(a, b):
        return mb.sub(x=a, y=b)

    for rows in (1, 5):
        a, b = rand(rows, 3, seed=rows), rand(rows, 3, seed=rows + 1)
        (out,) = execute(prog, {"a": a, "b": b}).values()
        np.testing.assert_allclose(out, a - b, **tol(np.float32))
    with pytest.raises(ExecutorError, match="was bound to 2 by an earlier input"):
        execute(prog, {"a": rand(2, 3), "b": rand(4, 3)})


def test_float64_is_cast_to_the_declared_fp32_and_fp16():
    x, y = rand(2, 3, dtype=np.float64, seed=1), rand(2, 3, dtype=np.float64, seed=2)
    got = execute(_two_outputs(), {"x": x, "y": y})
    assert got["total"].dtype == np.float32
    np.testing.assert_allclose(got["total"], (x + y).astype(np.float32), **tol(np.float32))
    got16 = execute(_two_outputs(types.fp16), {"x": x, "y": y})
    assert got16["total"].dtype == np.float16
    expected16 = x.astype(np.float16) + y.astype(np.float16)
    np.testing.assert_allclose(got16["total"], expected16, **tol(np.float16))


def test_int64_is_cast_to_int32_with_an_overflow_check():
    (out,) = execute(_int_program(), {"i": np.array([1, -2, 2**31 - 2], np.int64)}).values()
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [2, -1, 2**31 - 1])
    with pytest.raises(ExecutorError, match="outside int32's range"):
        execute(_int_program(), {"i": np.array([1, 2, 2**31], np.int64)})
    with pytest.raises(ExecutorError, match="refusing to truncate floats"):
        execute(_int_program(), {"i": np.array([1.5, 2, 3])})


def test_an_op_without_kernel_is_named_with_its_opset(monkeypatch):
    monkeypatch.setattr(runner, "KERNELS", Registry("executor kernel"))
    with pytest.raises(UnsupportedMILOpError, match=r"op 'total' of type 'add' at opset iOS15"):
        execute(_two_outputs(), {"x": rand(2, 3), "y": rand(2, 3)})


def test_kernel_failures_are_wrapped_with_the_op(monkeypatch):
    def broken(x, y):
        raise ValueError("boom")

    table = Registry("executor kernel")
    table.add("add", broken, since=15, ctx=False)
    monkeypatch.setattr(runner, "KERNELS", table)
    with pytest.raises(ExecutorError, match=r"op 'next' \(add, iOS15\) failed: ValueError: boom"):
        execute(_int_program(), {"i": np.arange(3, dtype=np.int32)})


def test_errors_are_pipeline_errors():
    assert issubclass(UnsupportedMILOpError, ExecutorError)
    assert issubclass(ExecutorError, PipelineError)


def test_plan_is_rebuilt_when_the_program_changes():
    prog = _two_outputs()
    x, y = rand(2, 3, seed=1), rand(2, 3, seed=2)
    execute(prog, {"x": x, "y": y})
    func = prog.functions["main"]
    with func:
        op = func.find_ops(op_type="mul")[0]
        replacement = mb.sub(x=op.x, y=op.y, before_op=op)
        func.replace_uses_of_var_after_op(anchor_op=op, old_var=op.outputs[0],
                                         new_var=replacement)
        func.remove_ops([op])
    (_, diff) = execute(prog, {"x": x, "y": y}).values()
    np.testing.assert_allclose(diff, x - y, **tol(np.float32))


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_saved_mlpackage_round_trip(tmp_path, precision):
    prog = _two_outputs()
    compute = ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16
    model = ct.convert(prog, convert_to="mlprogram", compute_precision=compute)
    path = tmp_path / "two.mlpackage"
    model.save(str(path))
    x, y = rand(2, 3, seed=1), rand(2, 3, seed=2)
    got = execute(str(path), {"x": x, "y": y})
    if precision == "fp32":
        np.testing.assert_allclose(got["total"], x + y, **tol(np.float32))
        np.testing.assert_allclose(got["product"], x * y, **tol(np.float32))
    else:
        # fp16 compute: inputs cast to fp16, op in fp16, result cast back to fp32.
        x16, y16 = x.astype(np.float16), y.astype(np.float16)
        np.testing.assert_allclose(got["total"], (x16 + y16).astype(np.float32),
                                   **tol(np.float16))
        np.testing.assert_allclose(got["product"], (x16 * y16).astype(np.float32),
                                   **tol(np.float16))


def test_range_dim_limits_from_a_converted_model(tmp_path):
    torch = pytest.importorskip("torch")
    layer = torch.nn.Linear(3, 2).eval()
    traced = torch.jit.trace(layer, torch.zeros(2, 3))
    model = ct.convert(
        traced, inputs=[ct.TensorType(name="x", shape=(ct.RangeDim(1, 4, default=2), 3))],
        convert_to="mlprogram", compute_precision=ct.precision.FLOAT32,
    )
    path = tmp_path / "lin.mlpackage"
    model.save(str(path))
    weight, bias = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    for rows in (1, 4):
        x = rand(rows, 3, seed=rows)
        (out,) = execute(path, {"x": x}).values()
        np.testing.assert_allclose(out, x @ weight.T + bias, rtol=1e-5, atol=1e-6)
    with pytest.raises(ExecutorError, match=r"dim 0 is 5, outside the allowed range \[1, 4\]"):
        execute(path, {"x": rand(5, 3)})
