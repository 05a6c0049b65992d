"""Benchmark: our MIL executor vs onnxruntime CPU on torchvision models (latency, peak memory).

    .venv/bin/python bench/executor.py [--models resnet50 vit_b_16] [--runs 5] [--warmup 1]

For each model (random weights): the MIL program comes from coremltools' own PyTorch frontend
(fp32), the ONNX file from ``torch.onnx.export(dynamo=False)``.  Each measurement runs in its own
subprocess: RSS after imports is the baseline; peak memory is the peak RSS (``VmHWM``, Linux)
above that baseline while loading the model and running it; latency is the median of ``--runs``
runs after ``--warmup`` runs.  Prints a table and the ratios executor / onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]

INPUTS = {"resnet50": (1, 3, 224, 224), "vit_b_16": (1, 3, 224, 224),
          "resnet18": (1, 3, 224, 224), "mobilenet_v3_small": (1, 3, 224, 224)}


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def prepare(name: str, workdir: Path) -> dict[str, Any]:
    """Build the torchvision model, convert it to an .mlpackage and an .onnx file."""
    import coremltools as ct
    import torch
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    x = torch.randn(*INPUTS[name])
    traced = torch.jit.trace(model, x, check_trace=False)
    mlmodel = ct.convert(traced, inputs=[ct.TensorType(name="x", shape=x.shape)],
                         convert_to="mlprogram", compute_precision=ct.precision.FLOAT32)
    package = workdir / f"{name}.mlpackage"
    mlmodel.save(str(package))
    onnx_path = workdir / f"{name}.onnx"
    torch.onnx.export(model, (x,), str(onnx_path), input_names=["x"], dynamo=False)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    np.save(workdir / f"{name}.x.npy", x.numpy())
    return {"package": str(package), "onnx": str(onnx_path), "weights_bytes": weights,
            "x": str(workdir / f"{name}.x.npy")}


def measure(engine: str, path: str, x_path: str, runs: int, warmup: int) -> dict[str, Any]:
    """Run inside the measuring subprocess: load, warm up, time; memory from /proc."""
    if engine == "executor":
        from pipeline.executor import execute, load
    else:
        import onnxruntime as ort
    x = np.load(x_path)
    base = _rss_kib("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    if engine == "executor":
        loaded = load(path)

        def call() -> Any:
            return execute(loaded, {"x": x})
    else:
        opts = ort.SessionOptions()
        session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

        def call() -> Any:
            return session.run(None, {"x": x})
    load_s = time.perf_counter() - start
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    peak = _rss_kib("VmHWM")
    return {"engine": engine, "load_s": load_s, "median_s": statistics.median(times),
            "peak_mib": (peak - base) / 1024, "times": times}


def _subprocess(engine: str, path: str, x_path: str, runs: int, warmup: int) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--measure", engine, path, x_path,
           "--runs", str(runs), "--warmup", str(warmup)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{engine} measurement failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet50", "vit_b_16"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--measure", nargs=3, metavar=("ENGINE", "PATH", "X"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        engine, path, x_path = args.measure
        sys.stdout.write(json.dumps(measure(engine, path, x_path, args.runs, args.warmup)) + "\n")
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            info = prepare(name, Path(tmp))
            ours = _subprocess("executor", info["package"], info["x"], args.runs, args.warmup)
            ort_ = _subprocess("ort", info["onnx"], info["x"], args.runs, args.warmup)
            rows.append((name, info["weights_bytes"] / 2**20, ours, ort_))
    out = sys.stdout
    out.write(f"{'model':20} {'weights MiB':>11} {'engine':9} {'median ms':>10} "
              f"{'peak MiB':>9} {'load s':>7}\n")
    for name, weights_mib, ours, ort_ in rows:
        for r in (ours, ort_):
            out.write(f"{name:20} {weights_mib:11.1f} {r['engine']:9} {1e3 * r['median_s']:10.1f} "
                      f"{r['peak_mib']:9.1f} {r['load_s']:7.2f}\n")
        out.write(
            f"{name:20} ratios: latency executor/ort = {ours['median_s'] / ort_['median_s']:.2f}x, "
            f"executor peak / weights = {ours['peak_mib'] / weights_mib:.2f}x, "
            f"ort peak / weights = {ort_['peak_mib'] / weights_mib:.2f}x\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
