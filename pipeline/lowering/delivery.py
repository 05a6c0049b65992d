"""What :func:`pipeline.lowering.stage.lower` does for the delivered model's interface and size:
the target the options need, compression, metadata, and their parity checks.

Kept out of ``stage.py`` so that the stage stays a short sequence of steps; every function here
takes the stage's objects (ONNX proto, MIL program, :class:`IOAdapter`) and returns figures for
the report.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import onnx

from pipeline.errors import LoweringError
from pipeline.lowering import compression as comp
from pipeline.lowering import model_interface as mi
from pipeline.parity import ParityReport

log = logging.getLogger(__name__)

#: Random inputs over which a classifier's top-1 agreement with onnxruntime is measured.
CLASSIFIER_SAMPLES = 8


def target_for(
    number: int,
    raise_target: bool,
    backend: str,
    interface: mi.InterfaceOptions | None,
    compression: comp.CompressionOptions | None,
) -> tuple[int, list[str]]:
    """The iOS target the interface and compression options need; warnings when raised.

    Raises:
        LoweringError: the options need a newer target and it may not be raised.
    """
    if compression is not None:
        compression.validate(backend)
    warnings = []
    for opts in (interface, compression):
        need = opts.needed_target() if opts is not None else None
        if need is None or need[0] <= number:
            continue
        needed, why = need
        if backend == "neuralnetwork" or not raise_target:
            raise LoweringError(
                f"lower: the model {why}, which needs --target iOS{needed} or newer (building "
                f"for iOS{number}); pass --target iOS{needed}"
                + (" with the mlprogram backend" if backend == "neuralnetwork" else "")
            )
        warning = f"target raised from iOS{number} to iOS{needed}: the model {why}"
        log.warning(warning)
        warnings.append(warning)
        number = needed
    return number, warnings


def metadata(model: Any, precision: str, compression: comp.CompressionOptions | None,
             sha256: str | None = None) -> dict[str, str]:
    """User-defined metadata always recorded: source hash (``sha256`` when the caller knows the
    source file's), precision, compression."""
    return {
        "pipeline.source_sha256": sha256 or mi.source_sha256(model),
        "pipeline.precision": precision,
        "pipeline.compression": compression.label() if compression is not None else "none",
    }


def check_compressed(
    proto: onnx.ModelProto,
    program: Any,
    adapter: Any,
    feeds: dict[str, np.ndarray],
    result: comp.CompressionResult,
    precision_tol: float,
) -> tuple[ParityReport, dict[str, Any]]:
    """Parity of a compressed program against onnxruntime fp32 at the setting's tolerance."""
    from pipeline.executor import execute
    from pipeline.lowering.reference import run_onnxruntime

    expected = run_onnxruntime(proto, feeds)
    actual = adapter.restore_outputs(execute(program, adapter.adapt_feeds(feeds)))
    tau = result.tolerance(precision_tol)
    report = comp.check_normalized(actual, expected, tau)
    figures = dict(result.to_dict(), tolerance=tau, bounded=tau < 1.0)
    figures["max_normalized_error"] = max(
        (row.max_abs / max(float(np.max(np.abs(expected[row.name]))), 1e-30) for row in report.outputs
         if np.asarray(expected[row.name]).dtype.kind == "f" and np.isfinite(row.max_abs)),
        default=0.0,
    )
    if not figures["bounded"]:
        # The setting's error bound says nothing (tau >= 1): report the figures, judge nothing.
        for row in report.outputs:
            row.ok = True
            row.note += "; unbounded setting: reported only"
    return report, figures


def classifier_top1(
    proto: onnx.ModelProto, program: Any, adapter: Any, interface: mi.InterfaceOptions,
    samples: int = CLASSIFIER_SAMPLES,
) -> dict[str, Any]:
    """Top-1 agreement of the Core ML classifier's label with onnxruntime's argmax."""
    from pipeline.executor import execute
    from pipeline.lowering.reference import run_onnxruntime
    from pipeline.lowering.stage import random_feeds

    name = interface.probabilities or adapter.outputs[0].name
    predicted, reference = [], []
    for seed in range(samples):
        feeds = random_feeds(adapter, seed=seed)
        raw = execute(program, adapter.adapt_feeds(feeds))
        predicted.append(str(raw[mi.CLASS_LABEL]))
        reference.append(np.asarray(run_onnxruntime(proto, feeds)[name]).reshape(-1))
    agreement = mi.top1_agreement(interface.class_labels, predicted, reference)
    return {"top1_agreement": agreement, "samples": samples}
