"""coremltools' MIL passes run our way, and the ML Program build after them.

``ct.convert(prog)`` runs coremltools' default pipeline (95 passes) and validates the whole
program after every pass, then calls ``gc.collect()``; on resnet18 those validations alone were a
third of stage two.  Here the same passes run in coremltools' own order (read from
``ct.PassPipeline.DEFAULT`` at run time, so a coremltools upgrade brings its new passes), minus

* the fp16-only passes at fp32 (as ``ct.convert`` does),
* passes that cannot fire on the program: each listed in :data:`NEEDS` with the MIL op types it
  rewrites; it is skipped when none of them occur anywhere in the program (quantization dialect,
  complex dialect, states, loops, conv_transpose), or, for the passes in :data:`NEEDS_AT_RUN`
  whose trigger ops an earlier pass could create, when none occur just before the pass runs
  (reduce_transposes without a transpose),

and the program is validated once at the end.  Measured on lowered ONNX files (bert, resnet18,
convnext_tiny; same op histograms as ``ct.convert``): passes + build 1.81 -> 0.31 s, 1.98 -> 0.49 s,
4.95 -> 1.43 s.  The neural-network backend keeps ``ct.convert`` (the legacy path).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

from pipeline.errors import LoweringError

log = logging.getLogger(__name__)

#: Passes that only make sense at fp16 compute precision (``ct.convert`` drops them at fp32).
FP16_ONLY = frozenset({"common::add_fp16_cast", "common::add_int16_cast"})

_QUANT = frozenset({"quantize", "dequantize"})
_STATE = frozenset({"read_state", "coreml_update_state"})

#: Pass -> the MIL op types it looks for; with none of them in the program it is a no-op.
NEEDS: dict[str, frozenset[str]] = {
    "common::lower_complex_dialect_ops": frozenset({
        "complex", "complex_real", "complex_imag", "complex_fft", "complex_fftn", "complex_rfft",
        "complex_rfftn", "complex_ifft", "complex_ifftn", "complex_irfft", "complex_irfftn",
        "complex_stft", "complex_shape", "complex_abs", "complex_add", "complex_sub",
        "complex_mul", "complex_matmul", "complex_concat", "complex_reshape", "complex_squeeze",
        "complex_transpose", "complex_expand_dims", "complex_slice_by_index", "complex_pad",
    }),
    "common::nullify_redundant_quantization_zero_point": _QUANT,
    "common::dequantize_quantize_pair_elimination": _QUANT,
    "common::distributive_quantized_binary_op_scale_normalization": _QUANT,
    "common::dequantize_to_constexpr": _QUANT,
    "common::canonicalize_quantized_lut_pattern": _QUANT,
    "common::merge_affine_dequantize_with_consecutive_ops": _QUANT,
    "common::canonicalize_inplace_pattern": _STATE,
    "common::prefer_state_in_downstream": _STATE,
    "common::loop_invariant_elimination": frozenset({"while_loop"}),
    "common::add_conv_transpose_output_shape": frozenset({"conv_transpose"}),
}


#: Passes whose trigger ops an earlier pass may create: checked just before each runs.  Without a
#: transpose, reduce_transposes has nothing to move or cancel (on CNNs it was 40% of pass time).
NEEDS_AT_RUN: dict[str, frozenset[str]] = {
    "common::reduce_transposes": frozenset({"transpose"}),
}


def program_op_types(prog: Any) -> set[str]:
    """Every op type in ``prog``, nested blocks (cond, while_loop bodies) included."""
    from pipeline.lowering.cleanup_util import program_blocks

    return {op.op_type for block in program_blocks(prog) for op in block.operations}


def main_passes(precision: str, op_types: set[str] | None = None) -> list[str]:
    """coremltools' default pipeline for ``precision``, minus passes with nothing to act on."""
    import coremltools as ct

    names = [p for p in ct.PassPipeline.DEFAULT.passes if precision == "fp16" or p not in FP16_ONLY]
    if op_types is None:
        return names
    return [p for p in names if p not in NEEDS or NEEDS[p] & op_types]


def backend_passes() -> list[str]:
    """coremltools' ML Program backend pipeline, whole (io dtypes, name sanitising, unused inputs)."""
    from coremltools.converters.mil.mil.passes.pass_pipeline import PassPipeline

    return list(PassPipeline._PIPELINE_NAME_TO_PASSES["backend_mlprogram"])


def pass_names(precision: str, op_types: set[str] | None = None) -> list[str]:
    """The main pipeline then the backend pipeline, for ``precision`` (fp32 or fp16)."""
    return main_passes(precision, op_types) + backend_passes()


def _holds_constexpr(block: Any) -> bool:
    from pipeline.lowering.cleanup_util import all_blocks

    return any(op.op_type.startswith("constexpr_") for b in all_blocks(block) for op in b.operations)


@contextlib.contextmanager
def _lean_block_exits() -> Iterator[None]:
    """While active, leaving a MIL block context skips coremltools' re-propagation of
    "non-replaceable" vars when the block holds no ``constexpr_*`` op.

    coremltools recomputes, on every block exit (once or more per pass), the set of ``constexpr_*``
    vars upstream of every var, from scratch; without such ops every set is empty (their initial
    value), so the walk changes nothing (on mobilenet_v2 it was half of the pass run).  With one
    (compressed weights) the stock propagation runs, rebuilding every set.
    """
    from coremltools.converters.mil.mil.block import Block

    stock = Block.__dict__.get("_propagate_nonreplaceable_vars")
    if stock is None:
        yield
        return

    def propagate(self: Any) -> None:
        if _holds_constexpr(self):
            stock(self)

    Block._propagate_nonreplaceable_vars = propagate  # type: ignore[method-assign]
    try:
        yield
    finally:
        Block._propagate_nonreplaceable_vars = stock  # type: ignore[method-assign]


def run_passes(prog: Any, names: Sequence[str]) -> None:
    """Apply the named registered graph passes to ``prog`` in place, then validate it once.

    Raises:
        LoweringError: a pass failed, or the program is invalid afterwards (the message names
            the pass, or says the validation failed).
    """
    from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY

    with _lean_block_exits():
        for name in names:
            if name in NEEDS_AT_RUN and not NEEDS_AT_RUN[name] & program_op_types(prog):
                continue
            try:
                PASS_REGISTRY[name](prog)
            except Exception as exc:  # coremltools' passes raise plain exceptions
                raise LoweringError(
                    f"lower: coremltools pass '{name}' failed on the lowered program: "
                    f"{type(exc).__name__}: {exc}. "
                    "Report it with the ONNX file, or retry with --backend neuralnetwork"
                ) from exc
    try:
        prog.validate(check_essential_scope=True)
    except Exception as exc:
        raise LoweringError(
            f"lower: the program is invalid after coremltools' passes ({', '.join(names[-3:])}, ...): "
            f"{type(exc).__name__}: {exc}. Report it with the ONNX file"
        ) from exc


def build_mlprogram(prog: Any, number: int, precision: str, classifier: Any = None) -> Any:
    """Run coremltools' passes on ``prog`` and wrap it as an ML Program ``MLModel`` for iOS ``number``.

    The steps ``ct.convert`` takes for a MIL program, minus per-pass validation and
    ``gc.collect``: opset check, passes, backend serialisation, package, build metadata.
    """
    import coremltools as ct
    from coremltools.converters._converters_entry import _record_build_metadata
    from coremltools.converters.mil._deployment_compatibility import check_deployment_compatibility
    from coremltools.converters.mil.backend.mil.load import load as mil_backend_load
    from coremltools.models.utils import _create_mlpackage

    target = getattr(ct.target, f"iOS{number}")
    needed, op = prog._get_max_opset_version_and_op()
    if needed > target:
        raise LoweringError(f"lower: MIL op '{op.op_type}' needs {needed.name} (building for iOS{number}); pass --target {needed.name}")
    run_passes(prog, pass_names(precision, program_op_types(prog)))
    try:
        prog._check_early_error_out_for_invalid_program()
    except Exception as exc:
        raise LoweringError(f"lower: Core ML cannot hold the program: {exc}") from exc
    weights = tempfile.TemporaryDirectory()
    try:
        spec = mil_backend_load(
            prog, weights_dir=weights.name, specification_version=target.value,
            classifier_config=classifier, convert_to="mlprogram", convert_from="milinternal",
        )
        package = _create_mlpackage(spec, weights.name, None)
    finally:
        weights.cleanup()
    mlmodel = ct.models.MLModel(package, is_temp_package=True, mil_program=prog)
    if mlmodel._input_has_infinite_upper_bound():
        raise LoweringError("lower: an ML Program input has an unbounded flexible axis; give it an upper bound")
    try:
        check_deployment_compatibility(spec=mlmodel._spec, representation="mlprogram", deployment_target=target)
    except ValueError as exc:
        raise LoweringError(f"lower: {str(exc).splitlines()[0]}") from exc
    return _record_build_metadata(mlmodel, "milinternal")


__all__ = ["NEEDS", "NEEDS_AT_RUN", "backend_passes", "build_mlprogram", "main_passes", "pass_names", "program_op_types", "run_passes"]
