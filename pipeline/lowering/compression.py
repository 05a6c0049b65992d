"""Weight compression of a converted ML Program through ``coremltools.optimize.coreml``, and the
parity tolerance each setting implies.

Settings (one method per model; ``blockwise`` selects the iOS18 forms):

=================  ======================================  =================================
setting            coremltools config                      per-weight error bound ``eps``
=================  ======================================  =================================
``int8``           linear symmetric, per output channel    ``scale/2 = max|w_c|/254``
``int8`` blockwise linear symmetric, per block (iOS18)     ``max|w_block|/254``
``int4`` blockwise linear symmetric, per block (iOS18)     ``max|w_block|/14``
palettize ``n``    k-means LUT of ``2**n`` entries          ``~max|w|/2**n`` (half a LUT gap)
palettize blockw.  k-means LUT per channel group (iOS18)   same, per group
prune ``s``        magnitude pruning to sparsity ``s``      the ``s``-quantile of ``|w|``
=================  ======================================  =================================

Tolerance.  With a per-weight error ``<= eps * max|w|`` (uniform, rms ``eps*max|w|/sqrt(3)``)
and ``max|w| ~ 4 rms(w)`` for the bell-shaped weights of trained or initialised layers, one
layer's output moves by ~``2.3 eps`` of its rms; independent errors of ``L`` compressed layers
add in quadrature (``sqrt(L)``) and an output's maximum sits ~3.5 rms from zero, so the largest
error relative to the output's largest magnitude is expected below ``8 * eps * sqrt(L)``.  The
parity check of a compressed model is therefore ``max|y - y_ref| <= tau * max|y_ref|`` per output
with ``tau = max(tau_precision, 8 * eps_measured * sqrt(L))``, where ``eps_measured`` is the
largest relative weight error actually introduced (decompressed vs original weights, per tensor)
and ``L`` the number of compressed tensors.  A ``tau >= 1`` bounds nothing: such a setting is
reported, not judged (``bounded=False``); classifiers also get top-1 agreement.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import LoweringError
from pipeline.parity import ParityReport, compare_arrays

log = logging.getLogger(__name__)

#: The growth factor of the tolerance formula above (module docstring).
GROWTH = 8.0
#: iOS version of the blockwise (per_block / per_grouped_channel) forms, int4 and 3-bit LUTs.
BLOCKWISE_TARGET = 18
PALETTE_BITS = (1, 2, 3, 4, 6, 8)
_SUFFIXES = ("_quantized", "_palettized", "_sparsified")


@dataclasses.dataclass
class CompressionOptions:
    """How to compress the weights of a converted ML Program.

    Attributes:
        quantize: ``"int8"`` (per channel, or per block with ``blockwise``) or ``"int4"``
            (blockwise only).
        palettize: LUT bits (1, 2, 3, 4, 6 or 8), k-means clustered.
        prune: target sparsity in (0, 1), magnitude pruning.
        blockwise: the iOS18 per-block / per-channel-group forms.
        block_size: block (quantize) or channel-group (palettize) size for ``blockwise``.
        weight_threshold: weights with fewer elements stay uncompressed (coremltools' default).
    """

    quantize: str | None = None
    palettize: int | None = None
    prune: float | None = None
    blockwise: bool = False
    block_size: int = 32
    weight_threshold: int = 2048

    @property
    def active(self) -> bool:
        return bool(self.quantize or self.palettize or self.prune)

    def label(self) -> str:
        """A short name of the setting: ``int8``, ``int4-block32``, ``palettize6``, ``prune0.5``."""
        if self.quantize:
            name = self.quantize
        elif self.palettize:
            name = f"palettize{self.palettize}"
        elif self.prune:
            name = f"prune{self.prune:g}"
        else:
            return "none"
        return f"{name}-block{self.block_size}" if self.blockwise else name

    def validate(self, backend: str) -> None:
        """Raise :class:`LoweringError` for settings Core ML cannot hold."""
        methods = [m for m in (self.quantize, self.palettize, self.prune) if m]
        if len(methods) > 1:
            raise LoweringError("lower: choose one of --quantize, --palettize, --prune (they do not combine here)")
        if self.active and backend != "mlprogram":
            raise LoweringError("lower: weight compression needs the mlprogram backend (drop --backend neuralnetwork)")
        if self.quantize and self.quantize not in ("int8", "int4"):
            raise LoweringError(f"lower: --quantize {self.quantize!r}: choose int8 (or int4 with --blockwise)")
        if self.quantize == "int4" and not self.blockwise:
            raise LoweringError("lower: --quantize int4 is blockwise only (iOS18): add --blockwise")
        if self.palettize and self.palettize not in PALETTE_BITS:
            raise LoweringError(f"lower: --palettize {self.palettize}: choose one of {PALETTE_BITS}")
        if self.prune is not None and self.prune and not 0.0 < self.prune < 1.0:
            raise LoweringError(f"lower: --prune {self.prune}: the target sparsity must be in (0, 1)")
        if self.blockwise and self.prune:
            raise LoweringError("lower: --blockwise applies to --quantize and --palettize, not --prune")
        if self.block_size < 1 or self.weight_threshold < 0:
            raise LoweringError("lower: --block-size must be >= 1 and the weight threshold >= 0")

    def needed_target(self) -> tuple[int, str] | None:
        """The iOS version this setting needs beyond iOS16 (constexpr ops), and why."""
        if self.blockwise:
            return BLOCKWISE_TARGET, f"compresses weights blockwise ({self.label()})"
        if self.palettize == 3:
            return BLOCKWISE_TARGET, "uses 3-bit lookup tables"
        if self.active:
            return 16, f"compresses weights ({self.label()}: constexpr ops are iOS16)"
        return None

    def config(self) -> tuple[Any, Any]:
        """The coremltools compression function and its ``OptimizationConfig``."""
        import coremltools.optimize.coreml as cto

        threshold = self.weight_threshold
        if self.quantize:
            op_cfg: Any = cto.OpLinearQuantizerConfig(
                mode="linear_symmetric", dtype=self.quantize,
                granularity="per_block" if self.blockwise else "per_channel",
                block_size=self.block_size if self.blockwise else None, weight_threshold=threshold,
            )
            fn: Any = cto.linear_quantize_weights
        elif self.palettize:
            op_cfg = cto.OpPalettizerConfig(
                mode="kmeans", nbits=self.palettize,
                granularity="per_grouped_channel" if self.blockwise else "per_tensor",
                group_size=self.block_size, weight_threshold=threshold,
            )
            fn = cto.palettize_weights
        else:
            op_cfg = cto.OpMagnitudePrunerConfig(target_sparsity=float(self.prune or 0.0), weight_threshold=threshold)
            fn = cto.prune_weights
        return fn, cto.OptimizationConfig(global_config=op_cfg)


@dataclasses.dataclass
class CompressionResult:
    """A compressed model with the figures its parity tolerance comes from."""

    mlmodel: Any
    setting: str
    tensors: int  # compressed weight tensors (L)
    weight_error: float  # max over tensors of max|w - w_decompressed| / max|w| (eps_measured)
    size_before: int
    size_after: int

    def tolerance(self, precision_tol: float) -> float:
        """``tau = max(tau_precision, GROWTH * eps * sqrt(L))`` (module docstring)."""
        return max(precision_tol, GROWTH * self.weight_error * math.sqrt(max(self.tensors, 1)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "setting": self.setting, "compressed_tensors": self.tensors,
            "weight_error": self.weight_error, "size_before": self.size_before,
            "size_after": self.size_after,
        }


def compress(mlmodel: Any, options: CompressionOptions) -> CompressionResult:
    """Compress ``mlmodel``'s weights; measure the weight error and the size before and after."""
    fn, config = options.config()
    before = model_size(mlmodel)
    try:
        compressed = fn(mlmodel, config)
    except ModuleNotFoundError as exc:
        raise LoweringError(f"lower: {options.label()} needs a package coremltools imports: {exc}") from exc
    except Exception as exc:  # coremltools raises plain exceptions for unsupported settings
        raise LoweringError(f"lower: coremltools could not compress the weights ({options.label()}): {type(exc).__name__}: {exc}") from exc
    tensors, error = weight_error(mlmodel._mil_program, compressed._mil_program)
    if tensors == 0:
        log.warning("compression %s changed no weight (all below %d elements?)", options.label(), options.weight_threshold)
    return CompressionResult(compressed, options.label(), tensors, error, before, model_size(compressed))


def weight_error(original: Any, compressed: Any) -> tuple[int, float]:
    """How many weights a compression changed and its largest relative error ``max|dw|/max|w|``."""
    consts: dict[str, np.ndarray] = {}
    for op in _ops(original):
        if op.op_type == "const" and op.outputs[0].val is not None:
            consts[op.outputs[0].name] = np.asarray(op.outputs[0].val)
    count, worst = 0, 0.0
    for op in _ops(compressed):
        if not op.op_type.startswith("constexpr_"):
            continue
        name = op.outputs[0].name
        for suffix in _SUFFIXES:
            name = name.removesuffix(suffix)
        if name not in consts:
            continue
        dense = np.asarray(op.materialized_val_inference(), dtype=np.float64)
        ref = consts[name].astype(np.float64)
        if dense.shape != ref.shape:
            continue
        count += 1
        peak = float(np.max(np.abs(ref))) or 1.0
        worst = max(worst, float(np.max(np.abs(dense - ref))) / peak)
    return count, worst


def _ops(program: Any) -> list[Any]:
    found: list[Any] = []

    def walk(block: Any) -> None:
        for op in block.operations:
            found.append(op)
            for inner in op.blocks:
                walk(inner)

    for func in program.functions.values():
        walk(func)
    return found


def model_size(mlmodel: Any) -> int:
    """Bytes the saved model takes on disk (an .mlpackage folder or an .mlmodel file)."""
    tmp = Path(tempfile.mkdtemp(prefix="pipeline-size-"))
    try:
        suffix = ".mlpackage" if mlmodel.get_spec().WhichOneof("Type") == "mlProgram" else ".mlmodel"
        path = tmp / f"m{suffix}"
        mlmodel.save(str(path))
        return path_size(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def path_size(path: Path) -> int:
    """Bytes of a file or of every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def check_normalized(
    actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray], tau: float,
) -> ParityReport:
    """Per output: ``max|actual - expected| <= tau * max|expected|`` (elementwise, rtol 0)."""
    rows = []
    for name, exp in expected.items():
        exp = np.asarray(exp)
        scale = float(np.max(np.abs(exp.astype(np.float64)))) if exp.size and exp.dtype.kind == "f" else 1.0
        if name not in actual:
            row = compare_arrays(name, np.zeros((0,)), exp, atol=0.0, rtol=0.0)
        else:
            row = compare_arrays(name, actual[name], exp, atol=tau * scale, rtol=0.0)
        row.note = (row.note + "; " if row.note else "") + f"atol = {tau:.3g} x max|ref| ({scale:.3g})"
        rows.append(row)
    return ParityReport(rows, tau, 0.0, "onnxruntime", "executor (compressed)")
