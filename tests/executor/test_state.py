"""State ops (read_state, coreml_update_state, write_state) and the explicit State object."""

from __future__ import annotations

import coremltools as ct
import numpy as np
import pytest
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

from pipeline.errors import ExecutorError
from pipeline.executor import State, execute, make_state
from tests.executor.support import rand, tol


def _accumulator(dtype=types.fp16):
    @mb.program(
        input_specs=[mb.TensorSpec(shape=(2, 3), dtype=dtype),
                     mb.StateTensorSpec(shape=(2, 3), dtype=dtype)],
        opset_version=ct.target.iOS18,
    )
    def prog(x, acc):
        total = mb.add(x=mb.read_state(input=acc), y=x)
        updated = mb.coreml_update_state(state=acc, value=total)
        return mb.mul(x=updated, y=np.float16(2) if dtype == types.fp16 else np.float32(2))

    return prog


def test_state_carries_across_calls_when_passed():
    prog = _accumulator()
    state = make_state(prog)
    np.testing.assert_array_equal(state["acc"], np.zeros((2, 3), np.float16))
    xs = [rand(2, 3, dtype=np.float16, seed=s) for s in range(3)]
    running = np.zeros((2, 3), np.float16)
    for x in xs:
        (out,) = execute(prog, {"x": x}, state=state).values()
        running = (running + x).astype(np.float16)  # fp16 add, as the program computes it
        assert out.dtype == np.float16
        np.testing.assert_allclose(out, running * np.float16(2), **tol(np.float16))
    np.testing.assert_allclose(state["acc"], running, **tol(np.float16))


def test_state_defaults_to_zeros_each_call():
    prog = _accumulator(types.fp32)
    x = rand(2, 3)
    for _ in range(2):
        (out,) = execute(prog, {"x": x}).values()
        np.testing.assert_allclose(out, 2 * x, **tol(np.float32))


def test_state_initial_values_from_a_dict_are_not_modified():
    prog = _accumulator(types.fp32)
    init = {"acc": np.full((2, 3), 5.0, np.float32)}
    x = rand(2, 3)
    (out,) = execute(prog, {"x": x}, state=init).values()
    np.testing.assert_allclose(out, 2 * (x + 5), **tol(np.float32))
    np.testing.assert_array_equal(init["acc"], np.full((2, 3), 5.0, np.float32))


def test_read_state_returns_a_copy_taken_before_the_update():
    @mb.program(
        input_specs=[mb.TensorSpec(shape=(4,)), mb.StateTensorSpec(shape=(4,), dtype=types.fp32)],
        opset_version=ct.target.iOS18,
    )
    def prog(x, s):
        before = mb.read_state(input=s)
        mb.coreml_update_state(state=s, value=x)
        after = mb.read_state(input=s)
        return mb.identity(x=before), mb.identity(x=after)

    state = State({"s": np.arange(4, dtype=np.float32)})
    x = rand(4)
    before, after = execute(prog, {"x": x}, state=state).values()
    np.testing.assert_array_equal(before, np.arange(4, dtype=np.float32))
    np.testing.assert_array_equal(after, x)
    np.testing.assert_array_equal(state["s"], x)


def test_state_errors_name_the_state():
    prog = _accumulator(types.fp32)
    with pytest.raises(ExecutorError, match="'acc' has shape"):
        execute(prog, {"x": rand(2, 3)}, state={"acc": np.zeros((3, 3), np.float32)})
    with pytest.raises(ExecutorError, match="not in the program"):
        execute(prog, {"x": rand(2, 3)}, state={"other": np.zeros((2, 3), np.float32)})
    with pytest.raises(ExecutorError, match="is a state"):
        execute(prog, {"x": rand(2, 3), "acc": np.zeros((2, 3), np.float32)})


def test_saved_stateful_package_round_trips(tmp_path):
    # Saved models store write_state + read_state; coremltools reads them back as
    # coreml_update_state.  Both paths must keep the state semantics.
    prog = _accumulator()
    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18)
    path = tmp_path / "acc.mlpackage"
    model.save(str(path))
    state = make_state(path)
    x = rand(2, 3, dtype=np.float16)
    execute(path, {"x": x}, state=state)
    (out,) = execute(path, {"x": x}, state=state).values()
    np.testing.assert_allclose(out, (x + x) * np.float16(2), **tol(np.float16))


def test_write_state_kernel_as_stored_in_saved_models():
    # pyMIL has no builder for write_state (the loader folds it into coreml_update_state), so
    # the kernel is called directly, as the runner would for an op named write_state.
    from pipeline.executor.kernels.registry import KERNELS

    state = State({"s": np.zeros(3, np.float16)})
    from pipeline.executor.state import StateHandle

    handle = StateHandle(state, "s")
    kernel = KERNELS.get("write_state", version=18)
    assert kernel(input=handle, data=np.array([1.5, 2.0, -3.0], np.float32)) == ()
    assert state["s"].dtype == np.float16
    np.testing.assert_array_equal(state["s"], np.array([1.5, 2.0, -3.0], np.float16))
