"""The layout-chain planner against numpy: any reshape -> transpose -> reshape is found again."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.lowering.cleanup import _plan


def _apply(steps, arr: np.ndarray) -> np.ndarray:
    for kind, arg in steps:
        arr = arr.reshape(arg) if kind == "reshape" else np.transpose(arr, arg)
    return arr


def _group(dims: list[int], rng: np.random.Generator) -> tuple[int, ...]:
    """Merge random neighbouring dims and sprinkle unit axes: another view of the same order."""
    out: list[int] = []
    for d in dims:
        if out and rng.random() < 0.4:
            out[-1] *= d
        else:
            out.append(d)
    if rng.random() < 0.5:
        out.insert(int(rng.integers(0, len(out) + 1)), 1)
    return tuple(out)


@pytest.mark.parametrize("seed", range(40))
def test_random_reshape_transpose_reshape_is_recovered(seed: int) -> None:
    rng = np.random.default_rng(seed)
    src = [int(d) for d in rng.integers(2, 5, size=int(rng.integers(2, 5)))]
    perm = [int(p) for p in rng.permutation(len(src))]
    moved = [src[p] for p in perm]
    in_shape, out_shape = _group(src, rng), _group(moved, rng)
    # The chain written the long way: an extra round trip through the flat shape.
    base = np.arange(int(np.prod(src))).reshape(in_shape)
    expected = np.transpose(base.reshape(-1).reshape(src), perm).reshape(out_shape)
    steps = _plan(in_shape, out_shape, expected)
    assert steps is not None and len(steps) <= 3
    np.testing.assert_array_equal(_apply(steps, base), expected)


def test_non_layout_result_has_no_plan() -> None:
    result = np.array([[0, 2], [1, 3]]).reshape(4)[[0, 3, 1, 2]].reshape(2, 2)  # not strided
    assert _plan((2, 2), (2, 2), result) is None
