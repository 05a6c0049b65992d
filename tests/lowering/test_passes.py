"""Our run of coremltools' passes (pipeline.lowering.passes: pruned, validated once) against
``ct.convert``'s default pipeline.

Reference: the same lowered program finished by ``ct.convert``'s default pipeline (op histogram),
and onnxruntime (numbers, through our executor).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

import pipeline
from pipeline.errors import LoweringError
from pipeline.lowering import passes, stage
from pipeline.lowering.reference import run_onnxruntime
from pipeline.parity import compare
from tests.lowering.support import tolerance_for

RNG = np.random.default_rng(0)


def _init(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(RNG.standard_normal(shape).astype(np.float32) * 0.3, name)


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: list[Any]) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    return model


def _cnn() -> onnx.ModelProto:
    """Conv + BatchNorm + Relu, a padded second conv, a residual add, pooling and a Gemm head."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "s", "bb", "m", "v"], ["n1"]),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("Pad", ["r1", "pads"], ["p1"]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"]),
        helper.make_node("Add", ["c2", "r1"], ["a"]),
        helper.make_node("GlobalAveragePool", ["a"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1),
    ]
    inits = [_init("w1", 4, 3, 3, 3), _init("b1", 4), _init("w2", 4, 4, 3, 3), _init("s", 4), _init("bb", 4),
             _init("m", 4), numpy_helper.from_array(np.full(4, 0.5, np.float32), "v"),
             numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
             _init("wf", 5, 4), _init("bf", 5)]
    return _model(nodes, [helper.make_tensor_value_info("x", T.FLOAT, [1, 3, 8, 8])],
                  [helper.make_tensor_value_info("y", T.FLOAT, [1, 5])], inits)


def _attention() -> onnx.ModelProto:
    """Single-head attention: projections, scaled scores (a division), softmax, a GELU, layer norm."""
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"]),
        helper.make_node("MatMul", ["x", "wk"], ["k"]),
        helper.make_node("MatMul", ["x", "wv"], ["v"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node("Div", ["s", "scale"], ["sd"]),
        helper.make_node("Softmax", ["sd"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["o"]),
        helper.make_node("Add", ["o", "x"], ["h"]),
        helper.make_node("LayerNormalization", ["h", "g", "b"], ["ln"], axis=-1),
        helper.make_node("Div", ["ln", "sqrt2"], ["t"]),
        helper.make_node("Erf", ["t"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["e1"]),
        helper.make_node("Mul", ["ln", "e1"], ["m"]),
        helper.make_node("Mul", ["m", "half"], ["y"]),
    ]
    scalar = lambda name, v: numpy_helper.from_array(np.array(v, np.float32), name)
    inits = [_init("wq", 8, 8), _init("wk", 8, 8), _init("wv", 8, 8), _init("g", 8), _init("b", 8),
             scalar("scale", 8**0.5), scalar("sqrt2", 2**0.5), scalar("one", 1.0), scalar("half", 0.5)]
    return _model(nodes, [helper.make_tensor_value_info("x", T.FLOAT, [1, 6, 8])],
                  [helper.make_tensor_value_info("y", T.FLOAT, [1, 6, 8])], inits)


def _silu_int() -> onnx.ModelProto:
    """x * sigmoid(x) (SiLU), a square root of a square, and an int64 index gather."""
    nodes = [
        helper.make_node("Sigmoid", ["x"], ["sg"]),
        helper.make_node("Mul", ["x", "sg"], ["si"]),
        helper.make_node("Pow", ["si", "two"], ["sq"]),
        helper.make_node("Sqrt", ["sq"], ["rt"]),
        helper.make_node("Gather", ["rt", "idx"], ["y"], axis=1),
    ]
    inits = [numpy_helper.from_array(np.array(2.0, np.float32), "two")]
    return _model(nodes, [helper.make_tensor_value_info("x", T.FLOAT, [2, 5]),
                          helper.make_tensor_value_info("idx", T.INT64, [3])],
                  [helper.make_tensor_value_info("y", T.FLOAT, [2, 3])], inits)


MODELS = {"cnn": _cnn, "attention": _attention, "silu_int": _silu_int}


def _feeds(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    feeds = {}
    for vi in model.graph.input:
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        if vi.type.tensor_type.elem_type == T.INT64:
            feeds[vi.name] = np.array([4, 0, 2], np.int64)
        else:
            feeds[vi.name] = RNG.standard_normal(shape).astype(np.float32)
    return feeds


def _default_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make stage two finish programs with ``ct.convert``'s default pipeline (the reference)."""
    import coremltools as ct

    def convert(prog: Any, number: int, precision: str, classifier: Any = None) -> Any:
        cp = ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16
        return ct.convert(prog, convert_to="mlprogram", compute_precision=cp, classifier_config=classifier,
                          minimum_deployment_target=getattr(ct.target, f"iOS{number}"))

    monkeypatch.setattr(passes, "build_mlprogram", convert)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_our_pass_run_matches_default_ops_and_onnxruntime(name: str, precision: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = MODELS[name]()
    ours = pipeline.lower(model, verify=False, precision=precision)
    with monkeypatch.context() as m:
        _default_pipeline(m)
        default = pipeline.lower(model, verify=False, precision=precision)
    assert stage.mil_op_histogram(ours.program) == stage.mil_op_histogram(default.program)
    feeds = _feeds(model)
    expected = run_onnxruntime(model, feeds)
    actual = ours.predict(feeds)
    for out, want in zip(model.graph.output, expected.values()):
        # fp16: the whole-network fp16 budget, as lower() checks
        atol, rtol = stage.TOLERANCES["fp16"] if precision == "fp16" else tolerance_for(want.dtype)
        report = compare({out.name: actual[out.name]}, {out.name: want}, atol=atol, rtol=rtol,
                         reference="onnxruntime", candidate="executor")
        assert report.ok, report.to_dict()


def test_fp16_inserts_casts_and_fp32_does_not() -> None:
    model = _cnn()
    half = stage.mil_op_histogram(pipeline.lower(model, verify=False, precision="fp16").program)
    full = stage.mil_op_histogram(pipeline.lower(model, verify=False, precision="fp32").program)
    assert half["cast"] >= 1
    assert full["cast"] == 0
    from coremltools.converters.mil.mil import types

    ops = [op for op in pipeline.lower(model, verify=False, precision="fp16").program.functions["main"].operations
           if op.op_type == "conv"]
    assert ops and all(types.builtin_to_string(op.outputs[0].dtype) == "fp16" for op in ops)


def test_neural_network_backend_still_converts() -> None:
    model = _cnn()
    result = pipeline.lower(model, verify=True, backend="neuralnetwork")
    assert result.parity is not None and result.parity.ok
    assert result.mlmodel.get_spec().WhichOneof("Type") == "neuralNetwork"


def test_mlprogram_model_is_normal() -> None:
    result = pipeline.lower(_cnn(), verify=False)
    spec = result.mlmodel.get_spec()
    assert spec.WhichOneof("Type") == "mlProgram"
    assert spec.specificationVersion == 7  # iOS16
    assert result.mlmodel.user_defined_metadata["com.github.apple.coremltools.source"] == "milinternal"
    assert [i.name for i in spec.description.input] == ["x"]


def test_a_failing_pass_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY

    def broken(prog: Any) -> None:
        raise ValueError("boom")

    monkeypatch.setitem(PASS_REGISTRY.passes, "common::dead_code_elimination", broken)
    with pytest.raises(LoweringError, match="common::dead_code_elimination"):
        pipeline.lower(_cnn(), verify=False)


def test_pass_names_follow_coremltools_and_skip_only_inapplicable_passes() -> None:
    from coremltools.converters.mil.mil.passes.pass_pipeline import PassPipeline
    from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY

    default = list(PassPipeline.DEFAULT.passes)
    everything = set().union(*passes.NEEDS.values())
    # with every trigger op present, the fp16 pipeline is coremltools' default, pass for pass
    assert passes.main_passes("fp16", everything) == default
    assert passes.main_passes("fp32", everything) == [p for p in default if p not in passes.FP16_ONLY]
    # a program without quantize/state/loop/complex/conv_transpose ops skips exactly those passes
    plain = passes.main_passes("fp32", {"conv", "add"})
    assert [p for p in default if p not in plain and p not in passes.FP16_ONLY] == [
        p for p in default if p in passes.NEEDS]
    for name in passes.NEEDS:
        assert name in PASS_REGISTRY and name in default
    assert Counter(passes.pass_names("fp32"))["common::add_fp16_cast"] == 0
    assert Counter(passes.pass_names("fp16"))["common::add_fp16_cast"] == 1
    assert passes.pass_names("fp32")[-len(passes.backend_passes()):] == passes.backend_passes()


def test_run_time_checked_pass_runs_only_with_its_trigger_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    """reduce_transposes is skipped on a program without transposes and runs on one with them;
    the op histograms still match ct.convert's full pipeline (test above, cnn and attention)."""
    from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY

    name = "common::reduce_transposes"
    assert name in passes.pass_names("fp32") and name in passes.NEEDS_AT_RUN
    calls: list[int] = []
    stock = PASS_REGISTRY[name]

    def counted(prog: Any) -> None:
        calls.append(1)
        stock(prog)

    monkeypatch.setitem(PASS_REGISTRY.passes, name, counted)
    cnn = pipeline.lower(_cnn(), verify=False)
    assert "transpose" not in passes.program_op_types(cnn.program) and calls == []
    pipeline.lower(_attention(), verify=False)
    assert 1 <= len(calls) <= Counter(passes.pass_names("fp32"))[name]  # listed twice by coremltools


def test_block_exits_skip_propagation_only_without_constexpr() -> None:
    """The lean block exit leaves programs without constexpr ops as they were and still
    propagates non-replaceable vars when a constexpr op is present."""
    import numpy as np
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 4), dtype=types.fp32)],
                opset_version=__import__("coremltools").target.iOS16)
    def prog(x: Any) -> Any:
        w = mb.constexpr_affine_dequantize(
            quantized_data=np.ones((4, 3), np.int8), zero_point=np.int8(0), scale=np.float32(0.5),
            axis=1)
        return mb.matmul(x=x, y=w)

    block = prog.functions["main"]
    matmul = next(op for op in block.operations if op.op_type == "matmul")
    matmul.outputs[0].nonreplaceable_vars_upstream = set()
    with passes._lean_block_exits(), block:
        pass
    assert len(matmul.outputs[0].nonreplaceable_vars_upstream) == 1  # propagated: constexpr present
    assert passes._holds_constexpr(block)
    plain = pipeline.lower(_cnn(), verify=False).program.functions["main"]
    assert not passes._holds_constexpr(plain)
