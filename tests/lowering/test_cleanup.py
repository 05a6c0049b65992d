"""The MIL layout-chain clean-up: fewer ops, same values (checked with the executor)."""

from __future__ import annotations

import coremltools as ct
import numpy as np
from coremltools.converters.mil import Builder as mb

from pipeline.executor import execute
from pipeline.lowering.cleanup import collapse_layout_chains


def _ops(prog) -> list[str]:
    return [op.op_type for op in prog.functions["main"].operations if op.op_type != "const"]


def _check(prog, x: np.ndarray, expected_ops: list[str]) -> None:
    before = execute(prog, {"x": x})
    collapse_layout_chains(prog)
    after = execute(prog, {"x": x})
    assert _ops(prog) == expected_ops
    assert list(before) == list(after)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])


def test_lstm_style_chain_becomes_one_reshape() -> None:
    @mb.program(input_specs=[mb.TensorSpec(shape=(5, 1, 16))], opset_version=ct.target.iOS16)
    def prog(x):
        y = mb.expand_dims(x=x, axes=[1])
        y = mb.transpose(x=y, perm=[0, 2, 1, 3])
        y = mb.reshape(x=y, shape=[5, 1, 16])
        y = mb.transpose(x=y, perm=[1, 0, 2])
        return mb.relu(x=y)

    _check(prog, np.random.default_rng(0).standard_normal((5, 1, 16)).astype(np.float32), ["reshape", "relu"])


def test_real_permutation_is_kept_as_one_transpose() -> None:
    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3, 4))], opset_version=ct.target.iOS16)
    def prog(x):
        y = mb.expand_dims(x=x, axes=[0])
        y = mb.transpose(x=y, perm=[0, 3, 2, 1])
        y = mb.squeeze(x=y, axes=[0])
        return mb.relu(x=y)

    _check(prog, np.arange(24, dtype=np.float32).reshape(2, 3, 4), ["transpose", "relu"])


def test_inverse_transposes_vanish() -> None:
    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3, 4))], opset_version=ct.target.iOS16)
    def prog(x):
        y = mb.relu(x=x)
        y = mb.transpose(x=y, perm=[2, 0, 1])
        y = mb.transpose(x=y, perm=[1, 2, 0])
        return mb.sigmoid(x=y)

    _check(prog, np.arange(24, dtype=np.float32).reshape(2, 3, 4), ["relu", "sigmoid"])


def test_head_split_is_left_alone() -> None:
    # reshape splits an axis, then a transpose moves the split parts: no shorter equivalent.
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4, 8))], opset_version=ct.target.iOS16)
    def prog(x):
        y = mb.reshape(x=x, shape=[1, 4, 2, 4])
        y = mb.transpose(x=y, perm=[0, 2, 1, 3])
        return mb.relu(x=y)

    _check(prog, np.arange(32, dtype=np.float32).reshape(1, 4, 8), ["reshape", "transpose", "relu"])


def test_an_output_keeps_its_own_value() -> None:
    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3))], opset_version=ct.target.iOS16)
    def prog(x):
        y = mb.relu(x=x)
        y = mb.transpose(x=y, perm=[1, 0])
        return mb.transpose(x=y, perm=[1, 0], name="out")

    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    collapse_layout_chains(prog)
    assert [v.name for v in prog.functions["main"].outputs] == ["out"]
    np.testing.assert_array_equal(execute(prog, {"x": x})["out"], x)
