"""Lowering of DFT, STFT, windows and the mel filter bank, checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto

from tests.lowering.support import Case, check, rand

F16 = np.float16
I64 = np.int64


def scalar(v: int) -> np.ndarray:
    return np.array(v, I64)


HANN = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(16) / 16)).astype(np.float32)

CASES = [
    # DFT opset 17: axis attribute, real and complex input, onesided, inverse, dft_length.
    Case("DFT", [rand(2, 16, 1)], opset=17, id="dft-real"),
    Case("DFT", [rand(2, 16, 2)], opset=17, id="dft-complex"),
    Case("DFT", [rand(2, 16, 1)], {"onesided": 1}, opset=17, id="dft-onesided"),
    Case("DFT", [rand(2, 12, 2)], {"inverse": 1}, opset=17, id="dft-inverse"),
    Case("DFT", [rand(2, 12, 1), scalar(16)], opset=17, const_inputs=(1,), id="dft-zero-pad"),
    Case("DFT", [rand(2, 12, 2), scalar(8)], opset=17, const_inputs=(1,), id="dft-truncate"),
    Case("DFT", [rand(3, 8, 4, 2)], {"axis": 2}, opset=17, id="dft-axis2"),
    Case("DFT", [rand(2, 16, 1, dtype=F16, low=-1, high=1)], opset=17, atol=2e-2, rtol=2e-2, id="dft-fp16"),
    # DFT opset 20: axis as input (default -2), negative axes.
    Case("DFT", [rand(2, 16, 1)], opset=20, id="dft20-default-axis"),
    Case("DFT", [rand(4, 6, 3, 2), None, scalar(1)], opset=20, const_inputs=(2,), id="dft20-axis1"),
    Case("DFT", [rand(4, 6, 3, 1), scalar(8), scalar(-3)], {"onesided": 1}, opset=20, const_inputs=(1, 2),
         id="dft20-negative-axis-onesided"),
    Case("DFT", [rand(2, 10, 2), None, scalar(-2)], {"inverse": 1}, opset=20, const_inputs=(2,), id="dft20-inverse"),
    # STFT: window, frame_length only, complex signal, two-sided.
    Case("STFT", [rand(2, 64, 1), scalar(8), HANN], {"onesided": 1}, opset=17, const_inputs=(1, 2), id="stft-hann"),
    Case("STFT", [rand(2, 48, 2), scalar(16), HANN], {"onesided": 0}, opset=17, const_inputs=(1, 2),
         id="stft-complex"),
    Case("STFT", [rand(2, 64, 1), scalar(8), HANN, scalar(16)], {"onesided": 1}, opset=17, const_inputs=(1, 2, 3),
         id="stft-window-and-length"),
    # Windows: periodic / symmetric, output types.
    Case("HannWindow", [scalar(10)], opset=17, const_inputs=(0,)),
    Case("HannWindow", [scalar(9)], {"periodic": 0}, opset=17, const_inputs=(0,), id="hann-symmetric"),
    Case("HammingWindow", [scalar(10)], opset=17, const_inputs=(0,)),
    Case("HammingWindow", [scalar(7)], {"periodic": 0, "output_datatype": TensorProto.FLOAT16}, opset=17,
         const_inputs=(0,), id="hamming-fp16"),
    Case("BlackmanWindow", [scalar(12)], opset=17, const_inputs=(0,)),
    Case("BlackmanWindow", [scalar(12)], {"periodic": 0}, opset=17, const_inputs=(0,), id="blackman-symmetric"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_signal(case: Case) -> None:
    check(case)


# onnxruntime has no MelWeightMatrix kernel: these cases take the ONNX reference evaluator as
# expected.  (STFT cases set onesided explicitly: with a window and no frame_length, onnx's shape
# inference ignores the attribute's default of 1 and infers two-sided frames.)
REFERENCE_CASES = [
    Case("MelWeightMatrix", [scalar(8), scalar(64), scalar(16000), np.array(0.0, np.float32),
                             np.array(8000.0, np.float32)], opset=17, const_inputs=(0, 1, 2, 3, 4)),
    Case("MelWeightMatrix", [scalar(20), scalar(512), scalar(22050), np.array(60.0, np.float32),
                             np.array(7600.0, np.float32)], {"output_datatype": TensorProto.FLOAT16}, opset=17,
         const_inputs=(0, 1, 2, 3, 4), id="mel-fp16"),
    Case("STFT", [rand(2, 64, 1), scalar(8), HANN, scalar(16)], {"onesided": 0}, opset=17, const_inputs=(1, 2, 3),
         id="stft-real-two-sided"),
    # onesided omitted (default 1): the loader spells the default out for onnx's shape inference.
    Case("STFT", [rand(1, 128, 1), scalar(8), HANN], opset=17, const_inputs=(1, 2), id="stft-onesided-default"),
]


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=str)
def test_signal_against_onnx_reference(case: Case) -> None:
    import onnx
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    from pipeline.lowering import lower
    from pipeline.parity import compare
    from tests.lowering.support import tolerance_for

    names, inits, feeds, inputs = [], [], {}, []
    for i, arr in enumerate(case.inputs):
        name = f"in{i}" if arr is not None else ""
        names.append(name)
        if arr is None:
            continue
        if i in case.const_inputs:
            inits.append(onnx.numpy_helper.from_array(arr, name))
        else:
            inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(arr.dtype), arr.shape))
            feeds[name] = arr
    node = helper.make_node(case.op, names, ["out0"], **case.attrs)
    untyped = helper.make_graph([node], "case", inputs, [helper.make_empty_tensor_value_info("out0")], inits)
    probe = helper.make_model(untyped, opset_imports=[helper.make_opsetid("", case.opset)])
    (expected,) = ReferenceEvaluator(probe).run(None, feeds)
    out = helper.make_tensor_value_info("out0", helper.np_dtype_to_tensor_dtype(expected.dtype), expected.shape)
    model = helper.make_model(helper.make_graph([node], "case", inputs, [out], inits),
                              opset_imports=[helper.make_opsetid("", case.opset)])
    model.ir_version = 10
    got = lower(model, verify=False).predict(feeds)["out0"]
    assert got.dtype == expected.dtype
    atol, rtol = tolerance_for(expected.dtype)
    report = compare({"out0": got}, {"out0": expected}, atol=atol, rtol=rtol)
    assert report.ok, report.summary()


def test_stft_run_time_window_is_unsupported() -> None:
    from pipeline.errors import UnsupportedOpError
    from pipeline.lowering import lower
    from tests.lowering.support import make_model

    model, _ = make_model(Case("STFT", [rand(1, 64, 1), scalar(8), HANN], {"onesided": 1}, opset=17,
                               const_inputs=(1,)))
    with pytest.raises(UnsupportedOpError, match="window"):
        lower(model, verify=False)
