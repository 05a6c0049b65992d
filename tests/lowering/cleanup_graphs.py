"""Small multi-node ONNX graphs for the MIL clean-up tests: onnxruntime gives the expected
values, ``lower`` + our executor the actual ones, with and without the pass under test."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from pipeline.lowering import cleanup, lower
from pipeline.lowering.reference import run_onnxruntime
from pipeline.lowering.stage import mil_op_histogram
from pipeline.parity import compare
from tests.lowering.support import tolerance_for


def graph(nodes: list[Any], feeds: dict[str, np.ndarray], inits: dict[str, np.ndarray],
          outputs: list[str], opset: int = 17) -> onnx.ModelProto:
    """A checked model of ``nodes``; output types and shapes come from onnxruntime."""
    ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape))
           for n, a in feeds.items()]
    init = [numpy_helper.from_array(np.asarray(a), n) for n, a in inits.items()]
    opsets = [helper.make_opsetid("", opset)]
    probe = helper.make_model(helper.make_graph(nodes, "g", ins, [helper.make_empty_tensor_value_info(o) for o in outputs],
                                                init), opset_imports=opsets)
    probe.ir_version = min(probe.ir_version, 10)
    got = run_onnxruntime(probe, feeds)
    outs = [helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(got[o].dtype), list(got[o].shape))
            for o in outputs]
    model = helper.make_model(helper.make_graph(nodes, "g", ins, outs, init), opset_imports=opsets)
    model.ir_version = probe.ir_version
    onnx.checker.check_model(model, full_check=True)
    return model


def lower_and_compare(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> Counter[str]:
    """Assert our lowering matches onnxruntime; returns the program's op histogram."""
    expected = run_onnxruntime(model, feeds)
    result = lower(model, target="iOS16", verify=False)
    actual = result.predict(feeds)
    for name, exp in expected.items():
        atol, rtol = tolerance_for(exp.dtype)
        report = compare({name: actual[name]}, {name: exp}, atol=atol, rtol=rtol)
        assert report.ok, report.summary()
    return mil_op_histogram(result.program)


def counts_with_and_without(monkeypatch: Any, model: onnx.ModelProto, feeds: dict[str, np.ndarray],
                            fn: Any) -> tuple[Counter[str], Counter[str]]:
    """Op histograms (with all clean-ups, without ``fn``); both runs are checked against ORT."""
    with_all = lower_and_compare(model, feeds)
    with monkeypatch.context() as patch:
        patch.setattr(cleanup, "CLEANUPS", [f for f in cleanup.CLEANUPS if f is not fn])
        without = lower_and_compare(model, feeds)
    return with_all, without
