"""Size and error of the delivered Core ML model per precision / compression setting.

For each model (random weights): export ONNX once with stage one, then for each setting lower it
(``pipeline.lower`` with ``precision`` / ``compression``), save the .mlpackage, load it back
through the milproto loader and run it with our executor on a few random inputs, against
onnxruntime fp32 on the ONNX model.  Reported per cell: package size, max absolute error, the
error relative to the output's largest magnitude (``max|d| / max|ref|``), the setting's tolerance
``tau`` (``pipeline.lowering.compression``) and, for the image classifiers, top-1 agreement.
Compressed settings use fp16 compute (how they are deployed).  Each cell runs in its own
subprocess with a time limit.

    python bench/precision.py                               # resnet50, mobilenet_v3_large, vit_b_16, bert_small
    python bench/precision.py --models mobilenet_v3_large --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import isolated

MODELS = ["mobilenet_v3_large", "bert_small", "resnet50", "vit_b_16"]
SETTINGS = ["fp32", "fp16", "int8", "palettize6", "palettize4"]
CLASSIFIERS = {"resnet50", "mobilenet_v3_large", "vit_b_16"}
SAMPLES = 4


def build(name: str) -> tuple[Any, tuple[Any, ...]]:
    """The model with random weights; vit_b_16's zero-initialised head gets random weights."""
    import torch
    from lowering_quality import build as build_common

    from models._common import calibrate_batch_norms

    model, inputs = build_common(name)
    # Random init leaves BatchNorm's running statistics at (0, 1): activations then shrink layer by
    # layer (mobilenet_v3's logits are ~1e-9, which fp16 flushes to zero).
    calibrate_batch_norms(model, inputs)
    if name == "vit_b_16":
        torch.manual_seed(1)
        torch.nn.init.normal_(model.heads.head.weight, std=0.02)  # torchvision zeroes it
    return model, inputs


def export_onnx(name: str, folder: str) -> dict[str, Any]:
    import pipeline

    model, inputs = build(name)
    path = Path(folder) / f"{name}.onnx"
    # Stage one's default 1e-5 is tight for resnet50's calibrated logits (fp32 reassociation in
    # onnxruntime gives ~4e-5); the fp32 tolerance of stage two is the right bar here.
    pipeline.export(model, inputs, path, atol=1e-4, rtol=1e-3)
    return {"path": str(path), "onnx_bytes": path.stat().st_size}


def _setting(setting: str) -> tuple[str, Any]:
    from pipeline.lowering.compression import CompressionOptions

    if setting in ("fp32", "fp16"):
        return setting, None
    if setting == "int8":
        return "fp16", CompressionOptions(quantize="int8")
    return "fp16", CompressionOptions(palettize=int(setting.removeprefix("palettize")))


def run_setting(onnx_path: str, setting: str, classifier: bool) -> dict[str, Any]:
    """Lower, save, reload through the milproto loader, and compare with onnxruntime fp32."""
    import numpy as np

    import pipeline
    from pipeline.executor import execute
    from pipeline.lowering.compression import path_size
    from pipeline.lowering.reference import run_onnxruntime
    from pipeline.lowering.stage import TOLERANCES, random_feeds

    precision, compression = _setting(setting)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.mlpackage"
        result = pipeline.lower(onnx_path, out, precision=precision, compression=compression, verify=False)
        size = path_size(out)
        proto = __import__("onnx").load(onnx_path)
        worst_abs, worst_norm, hits = 0.0, 0.0, 0
        for seed in range(SAMPLES):
            feeds = random_feeds(result.adapter, seed=seed)
            expected = run_onnxruntime(proto, feeds)
            actual = result.adapter.restore_outputs(execute(out, result.adapter.adapt_feeds(feeds)))
            for name, ref in expected.items():
                ref64, got = np.asarray(ref, np.float64), np.asarray(actual[name], np.float64)
                diff = float(np.max(np.abs(got - ref64)))
                worst_abs = max(worst_abs, diff)
                worst_norm = max(worst_norm, diff / max(float(np.max(np.abs(ref64))), 1e-30))
            first = next(iter(expected))
            hits += int(np.argmax(expected[first]) == np.argmax(actual[first]))
    comp = result.report.get("compression") or {}
    tau = TOLERANCES[precision][0]
    if compression is not None:
        from pipeline.lowering.compression import GROWTH

        tau = max(tau, GROWTH * comp.get("weight_error", 0.0) * comp.get("compressed_tensors", 1) ** 0.5)
    return {
        "size": size, "max_abs": worst_abs, "max_norm": worst_norm, "tau": tau,
        "top1": hits / SAMPLES if classifier else None, "weight_error": comp.get("weight_error"),
    }


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per cell")
    parser.add_argument("--json", metavar="FILE", help="also write the raw figures")
    args = parser.parse_args(argv)
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            exported = isolated(export_onnx, (name, tmp), args.timeout)
            rows[name] = {"export": exported}
            sys.stderr.write(f"{name}: export {json.dumps(exported)[:200]}\n")
            if "error" in exported:
                continue
            for setting in args.settings.split(","):
                cell = isolated(run_setting, (exported["path"], setting, name in CLASSIFIERS), args.timeout)
                cell.pop("trace", None)
                rows[name][setting] = cell
                sys.stderr.write(f"{name} {setting}: {json.dumps(cell)}\n")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    print("| model | setting | size | max abs err | max err / max\\|ref\\| | tau | top-1 agreement | time |")
    print("|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        for setting in args.settings.split(","):
            cell = row.get(setting, {"error": row["export"].get("error", "not run")})
            if "error" in cell:
                print(f"| {name} | {setting} | error: {cell['error'][:80]} | | | | | |")
                continue
            top1 = "-" if cell["top1"] is None else f"{cell['top1']:.0%} of {SAMPLES}"
            print(f"| {name} | {setting} | {_mb(cell['size'])} | {cell['max_abs']:.3g} | "
                  f"{cell['max_norm']:.3g} | {cell['tau']:.3g} | {top1} | {cell['wall_s']:.0f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
