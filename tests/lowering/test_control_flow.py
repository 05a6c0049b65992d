"""Lowering of If, Loop and Scan (subgraphs built with onnx.helper) against onnxruntime."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper

from pipeline.lowering import lower
from pipeline.lowering.reference import run_onnxruntime
from pipeline.parity import compare
from tests.lowering.support import Case, check, rand, tolerance_for

F16 = np.float16


def vi(name: str, elem: int, shape: list[Any] | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def graph(nodes: list[onnx.NodeProto], name: str, inputs: list[onnx.ValueInfoProto],
          outputs: list[onnx.ValueInfoProto], inits: list[onnx.TensorProto] | None = None) -> onnx.GraphProto:
    return helper.make_graph(nodes, name, inputs, outputs, inits or [])


def c(name: str, value: Any) -> onnx.TensorProto:
    return onnx.numpy_helper.from_array(np.asarray(value), name)


@dataclasses.dataclass
class Flow:
    """A one-node model whose node takes the first ``n_node_inputs`` graph inputs; the other
    graph inputs are only read by the node's subgraphs (outer scope)."""

    op: str
    inputs: list[Any]
    attrs: dict[str, Any]
    n_node_inputs: int
    n_outputs: int = 1
    opset: int = 17
    const_inputs: tuple[int, ...] = ()
    id: str = ""

    def __str__(self) -> str:
        return self.id


def build(case: Flow) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    names, graph_inputs, inits, feeds = [], [], [], {}
    for i, arr in enumerate(case.inputs):
        name = "" if arr is None else f"in{i}"
        names.append(name)
        if arr is None:
            continue
        arr = np.asarray(arr)
        if i in case.const_inputs:
            inits.append(onnx.numpy_helper.from_array(arr, name))
        else:
            graph_inputs.append(vi(name, helper.np_dtype_to_tensor_dtype(arr.dtype), list(arr.shape)))
            feeds[name] = arr
    outs = [f"out{i}" for i in range(case.n_outputs)]
    node = helper.make_node(case.op, names[: case.n_node_inputs], outs, name=f"{case.op}_node", **case.attrs)
    opsets = [helper.make_opsetid("", case.opset)]
    probe = helper.make_model(graph([node], "case", graph_inputs, [helper.make_empty_tensor_value_info(o) for o in outs],
                                    inits), opset_imports=opsets)
    probe.ir_version = 10
    res = run_onnxruntime(probe, feeds)
    typed = [vi(o, helper.np_dtype_to_tensor_dtype(res[o].dtype), list(res[o].shape)) for o in outs]
    model = helper.make_model(graph([node], "case", graph_inputs, typed, inits), opset_imports=opsets)
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    return model, feeds


def check_flow(case: Flow) -> None:
    model, feeds = build(case)
    expected = run_onnxruntime(model, feeds)
    actual = lower(model, verify=False).predict(feeds)
    for name, exp in expected.items():
        atol, rtol = tolerance_for(exp.dtype)
        assert actual[name].dtype == exp.dtype and actual[name].shape == exp.shape, (name, actual[name], exp)
        report = compare({name: actual[name]}, {name: exp}, atol=atol, rtol=rtol)
        assert report.ok, f"{case}:\n{report.summary()}"


# -- If ---------------------------------------------------------------------------------------------
def branches(elem: int = TP.FLOAT, shape: tuple[int, ...] = (2, 3)) -> dict[str, onnx.GraphProto]:
    """then: in1 + in1; else: in1 * 3 (both read the outer tensor in1)."""
    k = np.asarray(3, helper.tensor_dtype_to_np_dtype(elem))
    then_g = graph([helper.make_node("Add", ["in1", "in1"], ["t_out"])], "then", [], [vi("t_out", elem, list(shape))])
    else_g = graph([helper.make_node("Mul", ["in1", "k3"], ["e_out"])], "else", [], [vi("e_out", elem, list(shape))],
                   [c("k3", k)])
    return {"then_branch": then_g, "else_branch": else_g}


def if_multi() -> dict[str, onnx.GraphProto]:
    """Two outputs per branch; the else branch returns an outer tensor unchanged."""
    then_g = graph([helper.make_node("Neg", ["in1"], ["t0"]), helper.make_node("Abs", ["in1"], ["t1"])],
                   "then", [], [vi("t0", TP.FLOAT, [4]), vi("t1", TP.FLOAT, [4])])
    else_g = graph([helper.make_node("Exp", ["in1"], ["e0"])], "else", [],
                   [vi("e0", TP.FLOAT, [4]), vi("e1", TP.FLOAT, [4])])
    else_g.node.append(helper.make_node("Identity", ["in1"], ["e1"]))
    return {"then_branch": then_g, "else_branch": else_g}


IF_CASES = [
    Flow("If", [np.array(True), rand(2, 3)], branches(), 1, id="If-true"),
    Flow("If", [np.array(False), rand(2, 3)], branches(), 1, id="If-false"),
    Flow("If", [np.array([True]), rand(2, 3, dtype=F16)], branches(TP.FLOAT16), 1, opset=11, id="If-fp16-cond1"),
    Flow("If", [np.array(False), rand(2, 3, dtype=np.int64, low=-5, high=5)], branches(TP.INT64), 1, opset=13,
         id="If-int64"),
    Flow("If", [np.array(True), rand(2, 3)], branches(), 1, const_inputs=(0,), id="If-const-cond"),
    Flow("If", [np.array(False), rand(4)], if_multi(), 1, n_outputs=2, opset=19, id="If-two-outputs-false"),
    Flow("If", [np.array(True), rand(4)], if_multi(), 1, n_outputs=2, opset=21, id="If-two-outputs-true"),
]


# -- Loop -------------------------------------------------------------------------------------------
def loop_body(scan: bool = True, carried_elem: int = TP.FLOAT, stop_at: float | None = None) -> onnx.GraphProto:
    """v <- v * 0.5 + in2 (outer) + i; scan output v * i; cond <- (sum(v) < stop_at) or passthrough."""
    dt = helper.tensor_dtype_to_np_dtype(carried_elem)
    nodes = [
        helper.make_node("Cast", ["i"], ["i_f"], to=carried_elem),
        helper.make_node("Mul", ["v", "half"], ["v_half"]),
        helper.make_node("Add", ["v_half", "in2"], ["v_plus"]),
        helper.make_node("Add", ["v_plus", "i_f"], ["v_next"]),
        helper.make_node("Mul", ["v_next", "i_f"], ["y"]),
    ]
    if stop_at is None:
        nodes.append(helper.make_node("Identity", ["cond_in"], ["cond_out"]))
    else:
        nodes += [helper.make_node("ReduceSum", ["v_next"], ["total"], keepdims=0),
                  helper.make_node("Less", ["total", "limit"], ["cond_out"])]
    outputs = [vi("cond_out", TP.BOOL, []), vi("v_next", carried_elem, [2, 3])]
    if scan:
        outputs.append(vi("y", carried_elem, [2, 3]))
    inits = [c("half", np.asarray(0.5, dt)), c("limit", np.asarray(stop_at or 0, dt))]
    return graph(nodes, "body", [vi("i", TP.INT64, []), vi("cond_in", TP.BOOL, []), vi("v", carried_elem, [2, 3])],
                 outputs, inits)


def counter_body() -> onnx.GraphProto:
    """No carried values: scan output i * in2 (an outer tensor)."""
    nodes = [helper.make_node("Mul", ["i", "in2"], ["y"]), helper.make_node("Identity", ["cond_in"], ["cond_out"])]
    return graph(nodes, "body", [vi("i", TP.INT64, []), vi("cond_in", TP.BOOL, [])],
                 [vi("cond_out", TP.BOOL, []), vi("y", TP.INT64, [3])])


I64 = np.int64
LOOP_CASES = [
    Flow("Loop", [np.array(4, I64), np.array(True), rand(2, 3), rand(2, 3, seed=7)], {"body": loop_body()}, 3,
         const_inputs=(0,), n_outputs=2, opset=13, id="Loop-M-cond-scan"),
    Flow("Loop", [np.array(3, I64), None, rand(2, 3), rand(2, 3, seed=7)], {"body": loop_body(scan=False)}, 3,
         n_outputs=1, opset=11, id="Loop-M-only-dynamic"),
    Flow("Loop", [None, np.array(True), rand(2, 3, low=0, high=1), rand(2, 3, low=0, high=1, seed=7)],
         {"body": loop_body(stop_at=40.0)}, 3, n_outputs=2, opset=16, id="Loop-cond-only"),
    Flow("Loop", [np.array(10, I64), np.array(True), rand(2, 3, low=0, high=1), rand(2, 3, low=0, high=1, seed=7)],
         {"body": loop_body(stop_at=20.0)}, 3, n_outputs=2, opset=13, id="Loop-M-and-cond-early-exit"),
    Flow("Loop", [np.array(3, I64), np.array(True), rand(2, 3, dtype=F16), rand(2, 3, dtype=F16, seed=7)],
         {"body": loop_body(carried_elem=TP.FLOAT16)}, 3, n_outputs=2, opset=19, id="Loop-fp16"),
    Flow("Loop", [np.array(5, I64), np.array(True), np.array([1, -2, 3], I64)], {"body": counter_body()}, 2,
         n_outputs=1, opset=13, id="Loop-scan-only-int64"),
    Flow("Loop", [np.array(0, I64), np.array(True), rand(2, 3), rand(2, 3, seed=7)], {"body": loop_body()}, 3,
         n_outputs=2, opset=13, id="Loop-zero-trips"),
]


# -- Scan -------------------------------------------------------------------------------------------
def scan_body(two_inputs: bool = False) -> onnx.GraphProto:
    """s <- s + x_t (* w_t); y_t = s * 2 (a running sum)."""
    nodes = [helper.make_node("Add", ["s", "xt"], ["s_next"]),
             helper.make_node("Mul", ["s_next", "two"], ["yt"])]
    inputs = [vi("s", TP.FLOAT, [3]), vi("xt", TP.FLOAT, [3])]
    if two_inputs:
        nodes[0] = helper.make_node("Mul", ["xt", "wt"], ["xw"])
        nodes.insert(1, helper.make_node("Add", ["s", "xw"], ["s_next"]))
        inputs.append(vi("wt", TP.FLOAT, [3]))
    return graph(nodes, "body", inputs, [vi("s_next", TP.FLOAT, [3]), vi("yt", TP.FLOAT, [3])],
                 [c("two", np.float32(2))])


SCAN_CASES = [
    Case("Scan", [rand(3), rand(5, 3)], {"body": scan_body(), "num_scan_inputs": 1}, n_outputs=2, opset=9,
         id="Scan-basic"),
    Case("Scan", [rand(3), rand(3, 4)], {"body": scan_body(), "num_scan_inputs": 1, "scan_input_axes": [-1],
                                         "scan_input_directions": [1]}, n_outputs=2, opset=11, id="Scan-axis-reverse"),
    Case("Scan", [rand(3), rand(4, 3), rand(3, 4, seed=3)],
         {"body": scan_body(True), "num_scan_inputs": 2, "scan_input_axes": [0, 1],
          "scan_output_axes": [1], "scan_output_directions": [1]}, n_outputs=2, opset=16, id="Scan-two-inputs-out-axis"),
    # Scan 8: a leading batch axis on states and scan inputs, optional sequence_lens, directions.
    Case("Scan", [None, rand(2, 3), rand(2, 5, 3)], {"body": scan_body(), "num_scan_inputs": 1}, n_outputs=2,
         opset=8, id="Scan8-batch"),
    Case("Scan", [np.array([4, 4], np.int64), rand(2, 3), rand(2, 4, 3), rand(2, 4, 3, seed=3)],
         {"body": scan_body(True), "num_scan_inputs": 2, "directions": [1, 0]}, n_outputs=2, opset=8,
         const_inputs=(0,), id="Scan8-lens-directions"),
]


def test_scan8_short_sequence_lens_is_unsupported() -> None:
    from pipeline.errors import UnsupportedOpError
    from tests.lowering.support import make_model

    model, _ = make_model(Case("Scan", [np.array([5, 3], np.int64), rand(2, 3), rand(2, 5, 3)],
                               {"body": scan_body(), "num_scan_inputs": 1}, n_outputs=2, opset=8, const_inputs=(0,)))
    with pytest.raises(UnsupportedOpError, match="sequence_lens"):
        lower(model, verify=False)


@pytest.mark.parametrize("case", IF_CASES + LOOP_CASES, ids=str)
def test_if_loop(case: Flow) -> None:
    check_flow(case)


@pytest.mark.parametrize("case", SCAN_CASES, ids=str)
def test_scan(case: Case) -> None:
    check(case)


def test_const_if_lowers_one_branch() -> None:
    model, _ = build(IF_CASES[4])
    ops = lower(model, verify=False).report["mil_ops"]
    assert "cond" not in ops and ops.get("add") == 1 and "mul" not in ops


def test_dynamic_if_is_one_cond() -> None:
    model, _ = build(IF_CASES[0])
    ops = lower(model, verify=False).report["mil_ops"]
    assert ops.get("cond") == 1 and ops.get("add") == 1 and ops.get("mul") == 1


# -- regressions from onnx's node tests (test_loop11, test_scan9_scalar) ---------------------------
def slice_body() -> onnx.GraphProto:
    """y <- y + table[i:i+1] (a run-time Slice, so MIL infers a symbolic length); scan output y.

    The body declares float[1]: the lowering must keep the loop variable's static shape."""
    nodes = [
        helper.make_node("Add", ["i", "one"], ["end"]),
        helper.make_node("Unsqueeze", ["i", "axes0"], ["start1"]),
        helper.make_node("Unsqueeze", ["end", "axes0"], ["end1"]),
        helper.make_node("Slice", ["table", "start1", "end1"], ["piece"]),
        helper.make_node("Add", ["y", "piece"], ["y_out"]),
        helper.make_node("Identity", ["y_out"], ["scan_out"]),
        helper.make_node("Identity", ["cond_in"], ["cond_out"]),
    ]
    inits = [c("one", np.array(1, I64)), c("axes0", np.array([0], I64)),
             c("table", np.arange(1, 6, dtype=np.float32))]
    return graph(nodes, "body", [vi("i", TP.INT64, []), vi("cond_in", TP.BOOL, []), vi("y", TP.FLOAT, [1])],
                 [vi("cond_out", TP.BOOL, []), vi("y_out", TP.FLOAT, [1]), vi("scan_out", TP.FLOAT, [1])], inits)


def scalar_scan_body() -> onnx.GraphProto:
    """Scalar state and scalar scan output: s <- s + x_t; y_t = s."""
    nodes = [helper.make_node("Add", ["s", "xt"], ["s_next"]), helper.make_node("Identity", ["s_next"], ["yt"])]
    return graph(nodes, "body", [vi("s", TP.FLOAT, []), vi("xt", TP.FLOAT, [])],
                 [vi("s_next", TP.FLOAT, []), vi("yt", TP.FLOAT, [])])


REGRESSIONS = [
    Flow("Loop", [np.array(5, I64), np.array(True), np.array([-2.0], np.float32)], {"body": slice_body()}, 3,
         n_outputs=2, opset=13, id="Loop-runtime-slice-carried"),
]


@pytest.mark.parametrize("case", REGRESSIONS, ids=str)
def test_loop_regressions(case: Flow) -> None:
    check_flow(case)


@pytest.mark.parametrize("opset", [9, 16])
def test_scan_scalar_elements(opset: int) -> None:
    check(Case("Scan", [np.float32(0.5).reshape(()), rand(6)], {"body": scalar_scan_body(), "num_scan_inputs": 1},
               n_outputs=2, opset=opset, id="Scan-scalar"))
