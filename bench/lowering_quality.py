"""Lean output and lowering speed of stage two, against the peers, in one run.

For each model: export ONNX once with stage one, then measure

* ours: ``pipeline.lower`` (no parity run) - wall time and non-const MIL ops after coremltools'
  default passes;
* Apple's PyTorch frontend: ``ct.convert`` of a trace of the same PyTorch model - MIL ops;
* onnxsim's ``export_coreml`` on the same ONNX file - wall time and MIL ops.

Each measurement runs in its own subprocess with a time limit, so one crash or hang costs one
cell.  Targets (issue 4): never more ops than Apple's frontend; lowering time no more than half
of onnxsim's.

    python bench/lowering_quality.py                      # models/ entries + the torchvision/BERT set
    python bench/lowering_quality.py --models small_cnn,resnet50 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import isolated, mil_op_count

EXTRA = ["resnet50", "mobilenet_v3_large", "efficientnet_b0", "vit_b_16", "bert_small"]


def build(name: str) -> tuple[Any, tuple[Any, ...]]:
    """A model with random weights and its example inputs."""
    import torch

    torch.manual_seed(0)
    import models

    names = {e.name: e for e in models.ENTRIES}
    if name in names:
        return names[name].build()
    if name == "bert_small":
        from transformers import BertConfig, BertModel

        cfg = BertConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=256, max_position_embeddings=64)

        class Bert(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.bert = BertModel(cfg, add_pooling_layer=False).eval()

            def forward(self, ids: torch.Tensor) -> torch.Tensor:
                return self.bert(input_ids=ids).last_hidden_state

        return Bert().eval(), (torch.randint(0, 1000, (1, 32)),)
    import torchvision

    model = getattr(torchvision.models, name)(weights=None).eval()
    return model, (torch.randn(1, 3, 224, 224),)


def _ours(onnx_path: str) -> dict[str, Any]:
    import zoo_paths

    import pipeline

    zoo_paths.warm_imports()  # Python imports are not lowering time, for either path
    start = time.perf_counter()
    result = pipeline.lower(onnx_path, verify=False)
    return {"seconds": time.perf_counter() - start, "ops": mil_op_count(result.program)}


def _apple(name: str) -> dict[str, Any]:
    import coremltools as ct
    import torch

    model, inputs = build(name)
    with torch.no_grad():
        traced = torch.jit.trace(model, inputs)
    start = time.perf_counter()
    mlmodel = ct.convert(
        traced, inputs=[ct.TensorType(shape=t.shape) for t in inputs], convert_to="mlprogram",
        compute_precision=ct.precision.FLOAT32, minimum_deployment_target=ct.target.iOS16,
    )
    return {"seconds": time.perf_counter() - start, "ops": mil_op_count(mlmodel._mil_program)}


def _onnxsim(onnx_path: str) -> dict[str, Any]:
    import onnx
    import onnxsim
    import zoo_paths

    zoo_paths.warm_imports()
    model = onnx.load(onnx_path)
    start = time.perf_counter()
    mlmodel = onnxsim.export_coreml(model)
    return {"seconds": time.perf_counter() - start, "ops": mil_op_count(mlmodel._mil_program)}


def measure(kind: str, arg: str, timeout: float) -> dict[str, Any]:
    fn = {"ours": _ours, "apple": _apple, "onnxsim": _onnxsim}[kind]
    return isolated(fn, (arg,), timeout)


def export_onnx(name: str, folder: Path) -> str:
    import pipeline

    model, inputs = build(name)
    path = folder / f"{name}.onnx"
    pipeline.export(model, inputs, path)
    return str(path)


def _cell(result: dict[str, Any], key: str, fmt: str) -> str:
    return "fail" if "error" in result else format(result[key], fmt)


def main(argv: list[str] | None = None) -> int:
    import models

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", help="comma-separated subset (default: models/ entries and " + ", ".join(EXTRA) + ")")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per measurement")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args(argv)
    names = args.models.split(",") if args.models else [e.name for e in models.ENTRIES] + EXTRA

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            row: dict[str, Any] = {"model": name}
            try:
                onnx_path = export_onnx(name, Path(tmp))
            except Exception as exc:  # noqa: BLE001  (a model stage one can't export has no stage-two figures)
                row["export_error"] = str(exc).splitlines()[0][:160]
                rows.append(row)
                print(f"{name}: export failed: {row['export_error']}", file=sys.stderr)
                continue
            row["ours"] = measure("ours", onnx_path, args.timeout)
            row["apple"] = measure("apple", name, args.timeout)
            row["onnxsim"] = measure("onnxsim", onnx_path, args.timeout)
            rows.append(row)
            print(f"done {name}", file=sys.stderr)

    head = "| model | ops ours | ops Apple | ops onnxsim | lower s ours | lower s onnxsim | time ours/onnxsim |"
    print(head)
    print("|" + "---|" * 7)
    ratios, over = [], []
    for row in rows:
        if "export_error" in row:
            print(f"| {row['model']} | export failed: {row['export_error']} | | | | | |")
            continue
        ours, apple, sim = row["ours"], row["apple"], row["onnxsim"]
        ratio = ""
        if "error" not in ours and "error" not in sim and sim["seconds"] > 0:
            ratios.append(ours["seconds"] / sim["seconds"])
            ratio = f"{ratios[-1]:.2f}"
        if "error" not in ours and "error" not in apple and ours["ops"] > apple["ops"]:
            over.append(row["model"])
        print(f"| {row['model']} | {_cell(ours, 'ops', 'd')} | {_cell(apple, 'ops', 'd')} | "
              f"{_cell(sim, 'ops', 'd')} | {_cell(ours, 'seconds', '.2f')} | {_cell(sim, 'seconds', '.2f')} | {ratio} |")
    if ratios:
        print(f"\nmedian lowering time ours/onnxsim: {statistics.median(ratios):.2f} (target <= 0.5)")
    print(f"models where ours has more ops than Apple's frontend: {', '.join(over) or 'none'}")
    for row in rows:
        for kind in ("ours", "apple", "onnxsim"):
            if "error" in row.get(kind, {}):
                print(f"  {row['model']} [{kind}]: {row[kind]['error']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    raise SystemExit(main())
