"""classify (and the runner-evaluated _const_symbolic) vs numpy."""

from __future__ import annotations

import coremltools as ct
import numpy as np
import pytest
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil.operation import mil_list

from pipeline.executor import execute
from tests.executor.support import rand, tol


@pytest.mark.parametrize("classes", [["cat", "dog", "owl", "eel"], [np.int64(v) for v in (7, 3, 11, 5)]])
def test_classify_label_is_argmax_and_dict_holds_every_probability(classes):
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4))], opset_version=ct.target.iOS15)
    def prog(x):
        probs = mb.softmax(x=x, axis=-1)
        return mb.classify(probabilities=probs, classes=mb.const(val=mil_list(list(classes))))

    x = rand(1, 4, seed=5) * 3
    label, table = execute(prog, {"x": x}).values()
    probs = np.exp(x[0]) / np.exp(x[0]).sum()
    plain = [c.item() if isinstance(c, np.generic) else c for c in classes]
    assert np.asarray(label).item() == plain[int(np.argmax(probs))]
    assert list(table) == plain
    np.testing.assert_allclose([table[c] for c in plain], probs, **tol(np.float32))


def test_const_symbolic_with_a_concrete_value_is_a_constant():
    @mb.program(input_specs=[mb.TensorSpec(shape=(3,))], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.add(x=x, y=mb._const_symbolic(val=np.array([1.0, 2.0, 3.0], np.float32)))

    x = rand(3)
    (out,) = execute(prog, {"x": x}).values()
    np.testing.assert_allclose(out, x + np.array([1.0, 2.0, 3.0], np.float32), **tol(np.float32))
