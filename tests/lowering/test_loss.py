"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss: onnxruntime vs lower + our executor."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lowering.support import Case, check, rand


def _labels(*shape: int, classes: int, ignore: int | None = None, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=shape).astype(np.int64)
    if ignore is not None:
        labels.reshape(-1)[::3] = ignore
    return labels


X2 = rand(4, 5)
X4 = rand(2, 3, 4, 2)
W5 = rand(5, low=0.1, high=1.0)
W3 = rand(3, low=0.1, high=1.0)

CASES = [
    # NegativeLogLikelihoodLoss: every reduction, with/without weights and ignore_index, 2-D and N-D.
    Case("NegativeLogLikelihoodLoss", [X2, _labels(4, classes=5)], opset=12, id="nll-mean-12"),
    Case("NegativeLogLikelihoodLoss", [X2, _labels(4, classes=5)], {"reduction": "sum"}, opset=13, id="nll-sum"),
    Case("NegativeLogLikelihoodLoss", [X2, _labels(4, classes=5), W5], {"reduction": "none"}, opset=13,
         id="nll-none-weight"),
    Case("NegativeLogLikelihoodLoss", [X2, _labels(4, classes=5), W5], opset=22, id="nll-mean-weight-22"),
    Case("NegativeLogLikelihoodLoss", [X4, _labels(2, 4, 2, classes=3, ignore=-100), W3],
         {"ignore_index": -100}, opset=13, id="nll-nd-ignore-weight"),
    Case("NegativeLogLikelihoodLoss", [X4, _labels(2, 4, 2, classes=3, ignore=1)],
         {"ignore_index": 1, "reduction": "none"}, opset=13, id="nll-nd-ignore-none"),
    Case("NegativeLogLikelihoodLoss", [X4, _labels(2, 4, 2, classes=3, ignore=2)],
         {"ignore_index": 2}, opset=13, id="nll-nd-ignore-mean"),
    Case("NegativeLogLikelihoodLoss", [rand(4, 5, dtype=np.float16), _labels(4, classes=5)],
         {"reduction": "sum"}, opset=13, id="nll-fp16"),
    Case("NegativeLogLikelihoodLoss", [X2, _labels(4, classes=5).astype(np.int32)], opset=13, id="nll-int32-target"),
    # Rank 7 (N, C, d1..d5): flattened to (N, C, D) under Core ML's rank-5 limit.
    Case("NegativeLogLikelihoodLoss", [rand(2, 3, 2, 1, 2, 1, 2), _labels(2, 2, 1, 2, 1, 2, classes=3), W3],
         opset=13, id="nll-rank7-mean-weight"),
    Case("SoftmaxCrossEntropyLoss", [rand(2, 3, 2, 1, 2, 1, 2), _labels(2, 2, 1, 2, 1, 2, classes=3, ignore=1)],
         {"ignore_index": 1, "reduction": "sum"}, opset=13, id="sce-rank7-sum-ignore"),
    # SoftmaxCrossEntropyLoss: with and without the log_prob output.
    Case("SoftmaxCrossEntropyLoss", [X2, _labels(4, classes=5)], opset=12, id="sce-mean-12"),
    Case("SoftmaxCrossEntropyLoss", [X2, _labels(4, classes=5), W5], {"reduction": "sum"}, opset=13,
         n_outputs=2, id="sce-sum-weight-logprob"),
    Case("SoftmaxCrossEntropyLoss", [X4, _labels(2, 4, 2, classes=3, ignore=-1)],
         {"ignore_index": -1, "reduction": "none"}, opset=13, n_outputs=2, id="sce-nd-ignore"),
    Case("SoftmaxCrossEntropyLoss", [X4, _labels(2, 4, 2, classes=3, ignore=0), W3],
         {"ignore_index": 0}, opset=13, id="sce-nd-ignore-weight-mean"),
    Case("SoftmaxCrossEntropyLoss", [rand(4, 5, dtype=np.float16), _labels(4, classes=5)], opset=13,
         n_outputs=2, id="sce-fp16"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_loss(case: Case) -> None:
    check(case)
