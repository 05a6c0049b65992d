"""Lowering of LSTM, GRU and RNN (native MIL cells and the unrolled composite) against onnxruntime."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import onnx
import pytest

from pipeline.errors import LoweringError
from tests.lowering.support import Case, check, rand

F16 = np.float16
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def rec_case(
    op: str, *, seq: int = 4, batch: int = 2, inp: int = 3, hid: int = 5, direction: str = "forward",
    bias: bool = True, h0: bool = False, c0: bool = False, peep: bool = False, lens: Any = None,
    dynamic_weights: bool = False, layout: int = 0, dtype: Any = np.float32, opset: int = 14,
    outputs: int = 3, target: str = "iOS16", id: str = "", **attrs: Any,
) -> Case:
    """An ONNX recurrent node with random weights; W, R, B, P are initializers unless dynamic."""
    g, d = GATES[op], 2 if direction == "bidirectional" else 1
    x_shape = (batch, seq, inp) if layout else (seq, batch, inp)
    s_shape = (batch, d, hid) if layout else (d, batch, hid)
    inputs: list[Any] = [
        rand(*x_shape, dtype=dtype, seed=1),
        rand(d, g * hid, inp, dtype=dtype, low=-0.6, high=0.6, seed=2),
        rand(d, g * hid, hid, dtype=dtype, low=-0.6, high=0.6, seed=3),
        rand(d, 2 * g * hid, dtype=dtype, low=-0.5, high=0.5, seed=4) if bias else None,
        None if lens is None else np.asarray(lens, np.int32),
        rand(*s_shape, dtype=dtype, seed=5) if h0 else None,
    ]
    if op == "LSTM":
        inputs += [rand(*s_shape, dtype=dtype, seed=6) if c0 else None,
                   rand(d, 3 * hid, dtype=dtype, low=-0.5, high=0.5, seed=7) if peep else None]
    while inputs[-1] is None:
        inputs.pop()
    wanted: tuple[int, ...] = () if dynamic_weights else (1, 2, 3, 7)
    const = tuple(i for i in wanted if i < len(inputs) and inputs[i] is not None)
    attrs = dict(attrs, hidden_size=hid, direction=direction)
    if opset >= 14:
        attrs["layout"] = layout
    n_out = min(outputs, 3 if op == "LSTM" else 2)
    return Case(op, inputs, attrs, opset=opset, const_inputs=const, n_outputs=n_out, target=target,
                id=id or f"{op}-{direction}")


CASES = [
    # LSTM: native MIL lstm.
    rec_case("LSTM", id="LSTM-fwd"),
    rec_case("LSTM", direction="reverse", h0=True, c0=True, id="LSTM-rev-states"),
    rec_case("LSTM", direction="bidirectional", h0=True, c0=True, peep=True, id="LSTM-bidi-peep"),
    rec_case("LSTM", opset=7, bias=False, id="LSTM-opset7-nobias"),
    rec_case("LSTM", layout=1, direction="bidirectional", id="LSTM-layout1-bidi"),
    rec_case("LSTM", lens=[4, 4], id="LSTM-uniform-lens"),
    rec_case("LSTM", outputs=2, id="LSTM-no-Yc"),
    rec_case("LSTM", dtype=F16, id="LSTM-fp16-iOS16-casts"),
    rec_case("LSTM", dtype=F16, target="iOS17", direction="bidirectional", id="LSTM-fp16-iOS17"),
    rec_case("LSTM", activations=["HardSigmoid", "Relu", "Tanh"], id="LSTM-native-acts"),
    # LSTM: unrolled composite.
    rec_case("LSTM", clip=0.3, id="LSTM-clip"),
    rec_case("LSTM", input_forget=1, peep=True, id="LSTM-input-forget"),
    rec_case("LSTM", activations=["LeakyRelu", "Softsign", "Elu"], activation_alpha=[0.1, 0.7], id="LSTM-acts"),
    rec_case("LSTM", lens=[4, 2], h0=True, c0=True, direction="bidirectional", id="LSTM-lens-bidi"),
    rec_case("LSTM", dynamic_weights=True, peep=True, id="LSTM-dynamic-weights"),
    rec_case("LSTM", lens=[1, 3], dynamic_weights=True, direction="reverse", id="LSTM-dyn-lens-rev"),
    rec_case("LSTM", clip=0.5, layout=1, dtype=F16, id="LSTM-fp16-clip-layout1"),
    # GRU.
    rec_case("GRU", id="GRU-fwd"),
    rec_case("GRU", direction="reverse", h0=True, id="GRU-rev"),
    rec_case("GRU", direction="bidirectional", h0=True, layout=1, id="GRU-bidi-layout1"),
    rec_case("GRU", opset=7, id="GRU-opset7"),
    rec_case("GRU", linear_before_reset=1, id="GRU-lbr-raises-target"),
    rec_case("GRU", linear_before_reset=1, clip=2.0, direction="reverse", id="GRU-lbr-composite"),
    rec_case("GRU", linear_before_reset=1, target="iOS18", direction="bidirectional", id="GRU-lbr-iOS18"),
    rec_case("GRU", activations=["HardSigmoid", "Softplus"], activation_alpha=[0.3], activation_beta=[0.4],
             id="GRU-acts"),
    rec_case("GRU", clip=0.4, lens=[2, 4], id="GRU-clip-lens"),
    rec_case("GRU", dtype=F16, id="GRU-fp16"),
    # RNN.
    rec_case("RNN", id="RNN-fwd"),
    rec_case("RNN", direction="bidirectional", h0=True, id="RNN-bidi"),
    rec_case("RNN", activations=["Relu"], direction="reverse", id="RNN-relu-rev"),
    rec_case("RNN", activations=["Affine"], activation_alpha=[0.5], activation_beta=[0.1], id="RNN-affine"),
    rec_case("RNN", activations=["ScaledTanh", "ThresholdedRelu"], activation_alpha=[0.8, 0.2],
             activation_beta=[1.5], direction="bidirectional", id="RNN-acts-bidi"),
    rec_case("RNN", opset=7, bias=False, outputs=1, id="RNN-opset7-Y-only"),
    rec_case("RNN", layout=1, dtype=F16, id="RNN-fp16-layout1"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_recurrent(case: Case) -> None:
    if case.attrs.get("layout") == 1:
        check_batch_first(case)
    else:
        check(case)


def check_batch_first(case: Case) -> None:
    """layout=1 (onnxruntime lacks it): expected = the layout=0 model on transposed data."""
    from pipeline.lowering import lower
    from pipeline.lowering.reference import run_onnxruntime
    from pipeline.parity import compare
    from tests.lowering.support import make_model, tolerance_for

    swap = {0: (1, 0, 2), 5: (1, 0, 2), 6: (1, 0, 2)}  # X [b,s,I] -> [s,b,I], states [b,D,H] -> [D,b,H]
    inputs0 = [a if a is None or i not in swap else np.ascontiguousarray(a.transpose(swap[i]))
               for i, a in enumerate(case.inputs)]
    case0 = dataclasses.replace(case, inputs=inputs0, attrs=dict(case.attrs, layout=0))
    model0, feeds0 = make_model(case0)
    expected0 = run_onnxruntime(model0, feeds0)
    model1, feeds1 = make_model_layout1(model0, feeds0)
    actual = lower(model1, target=case.target, precision=case.precision, verify=False).predict(feeds1)
    back = {"out0": (2, 0, 1, 3), "out1": (1, 0, 2), "out2": (1, 0, 2)}
    for name, exp in expected0.items():
        exp = exp.transpose(back[name])
        atol, rtol = tolerance_for(exp.dtype)
        report = compare({name: actual[name]}, {name: exp}, atol=atol, rtol=rtol)
        assert report.ok, f"{case}:\n{report.summary()}"


def make_model_layout1(model0: onnx.ModelProto, feeds0: dict[str, np.ndarray]) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The same node with layout=1 and batch-first graph inputs/outputs."""
    model = onnx.ModelProto()
    model.CopyFrom(model0)
    node = model.graph.node[0]
    for attr in node.attribute:
        if attr.name == "layout":
            attr.i = 1
    perms = {"in0": (1, 0, 2), "in5": (1, 0, 2), "in6": (1, 0, 2),
             "out0": (2, 0, 1, 3), "out1": (1, 0, 2), "out2": (1, 0, 2)}
    for vi in list(model.graph.input) + list(model.graph.output):
        if vi.name in perms:
            dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            for d, p in zip(vi.type.tensor_type.shape.dim, perms[vi.name]):
                d.dim_value = dims[p]
    onnx.checker.check_model(model, full_check=True)
    feeds = {k: np.ascontiguousarray(v.transpose(perms[k])) if k in perms else v for k, v in feeds0.items()}
    return model, feeds


def test_gru_linear_before_reset_needs_ios18() -> None:
    from pipeline.lowering import lower
    from tests.lowering.support import make_model

    model, _ = make_model(rec_case("GRU", linear_before_reset=1))
    assert lower(model, target="iOS16", verify=False).report["target"] == "iOS18"
    with pytest.raises(LoweringError, match="--target iOS18"):
        lower(model, target="iOS16", raise_target=False, verify=False)


def test_native_lstm_is_one_mil_op() -> None:
    # The lean path: a plain LSTM is one MIL lstm plus layout ops, no unrolled gate math.
    from pipeline.lowering import lower
    from tests.lowering.support import make_model

    model, _ = make_model(rec_case("LSTM", direction="bidirectional"))
    ops = lower(model, verify=False).report["mil_ops"]
    assert ops.get("lstm") == 1 and "sigmoid" not in ops and "linear" not in ops
