"""Benchmark: our MIL executor vs onnxruntime CPU on torchvision models (latency, peak memory).

    .venv/bin/python bench/executor.py [--models resnet50 vit_b_16] [--runs 5] [--warmup 1]
        [--rounds 3] [--threads N] [--spin] [--workdir DIR]

For each model (random weights): the MIL program comes from coremltools' own PyTorch frontend
(fp32), the ONNX file from ``torch.onnx.export(dynamo=False)``.  Each measurement runs in its own
subprocess: RSS after importing the engine's libraries (for the executor: torch, coremltools'
loader) is the baseline; peak memory is the peak RSS (``VmHWM``, Linux) above that baseline
while loading the model and running it.  Latency: per subprocess the median wall time of
``--runs`` runs after ``--warmup`` runs, and the CPU time per run (all threads), which a loaded
machine disturbs far less.  The two engines alternate for ``--rounds`` rounds; the table gives
the median over rounds and the ratio executor / onnxruntime of each round's figures.

Threads: both engines get the same count (``--threads``, default: the CPUs this process may
use), torch via ``torch.set_num_threads``, onnxruntime via ``intra_op_num_threads``.  Waiting:
torch's OpenMP threads spin at every barrier by default, which on a shared machine turns a
descheduled thread into many-fold slowdowns; by default both engines wait passively
(``OMP_WAIT_POLICY=PASSIVE`` for the executor, ``session.intra_op.allow_spinning=0`` for
onnxruntime).  ``--spin`` measures both with their spinning defaults instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
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


def measure(
    engine: str, path: str, x_path: str, runs: int, warmup: int, threads: int, spin: bool
) -> dict[str, Any]:
    """Run inside the measuring subprocess: load, warm up, time; memory from /proc."""
    if engine == "executor":
        import torch
        from coremltools.converters.mil.frontend.milproto import load as _milproto  # noqa: F401
        from coremltools.models import utils as _ct_utils  # noqa: F401

        from pipeline.executor import execute, load

        torch.set_num_threads(threads)
        used = torch.get_num_threads()
    else:
        import onnxruntime as ort

        used = threads
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
        opts.intra_op_num_threads = threads
        if not spin:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

        def call() -> Any:
            return session.run(None, {"x": x})
    load_s = time.perf_counter() - start
    for _ in range(warmup):
        call()
    times, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    peak = _rss_kib("VmHWM")
    return {"engine": engine, "load_s": load_s, "median_s": statistics.median(times),
            "cpu_s": statistics.median(cpu), "peak_mib": (peak - base) / 1024,
            "imports_mib": base / 1024, "threads": used, "times": times}


def _subprocess(
    engine: str, path: str, x_path: str, args: argparse.Namespace, threads: int
) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--measure", engine, path, x_path,
           "--runs", str(args.runs), "--warmup", str(args.warmup), "--threads", str(threads)]
    env = dict(os.environ)
    if args.spin:
        cmd.append("--spin")
    elif engine == "executor":
        env["OMP_WAIT_POLICY"] = "PASSIVE"  # read once, when torch's OpenMP runtime loads
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{engine} measurement failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _prepared(name: str, workdir: Path) -> dict[str, Any]:
    """``prepare``'s result, reused from ``workdir`` when an earlier run left it there."""
    cache = workdir / f"{name}.json"
    if cache.exists():
        info: dict[str, Any] = json.loads(cache.read_text())
        if all(Path(info[k]).exists() for k in ("package", "onnx", "x")):
            return info
    info = prepare(name, workdir)
    cache.write_text(json.dumps(info))
    return info


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet50", "vit_b_16"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="per engine (0: usable CPUs)")
    parser.add_argument("--spin", action="store_true", help="keep the engines' spin-waiting")
    parser.add_argument("--workdir", help="keep converted models here and reuse them")
    parser.add_argument("--measure", nargs=3, metavar=("ENGINE", "PATH", "X"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    threads = args.threads or len(os.sched_getaffinity(0))
    if args.measure:
        engine, path, x_path = args.measure
        result = measure(engine, path, x_path, args.runs, args.warmup, threads, args.spin)
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for name in args.models:
            info = _prepared(name, workdir)
            ours, theirs = [], []
            for _ in range(args.rounds):
                ours.append(_subprocess("executor", info["package"], info["x"], args, threads))
                theirs.append(_subprocess("ort", info["onnx"], info["x"], args, threads))
            rows.append((name, info["weights_bytes"] / 2**20, ours, theirs))
    out = sys.stdout
    out.write(f"threads per engine: {threads}; waiting: {'spin' if args.spin else 'passive'}; "
              f"{args.rounds} rounds x {args.runs} runs (medians)\n")
    out.write(f"{'model':12} {'weights MiB':>11} {'engine':9} {'wall ms':>9} {'cpu ms':>8} "
              f"{'peak MiB':>9} {'load s':>7} {'imports MiB':>11}\n")
    for name, weights_mib, ours, theirs in rows:
        for engine_rows in (ours, theirs):
            out.write(
                f"{name:12} {weights_mib:11.1f} {engine_rows[0]['engine']:9} "
                f"{1e3 * _median(engine_rows, 'median_s'):9.1f} "
                f"{1e3 * _median(engine_rows, 'cpu_s'):8.1f} "
                f"{_median(engine_rows, 'peak_mib'):9.1f} {_median(engine_rows, 'load_s'):7.2f} "
                f"{_median(engine_rows, 'imports_mib'):11.1f}\n"
            )
        wall = [a["median_s"] / b["median_s"] for a, b in zip(ours, theirs)]
        cpu = [a["cpu_s"] / b["cpu_s"] for a, b in zip(ours, theirs)]
        out.write(
            f"{name:12} ratios executor/ort: wall {statistics.median(wall):.2f}x "
            f"(rounds {', '.join(f'{r:.2f}' for r in wall)}), cpu {statistics.median(cpu):.2f}x; "
            f"peak/weights: executor {_median(ours, 'peak_mib') / weights_mib:.2f}x, "
            f"ort {_median(theirs, 'peak_mib') / weights_mib:.2f}x\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
