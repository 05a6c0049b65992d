"""Executor kernels of MIL constexpr ops: hand-built cases from the MIL docs (bit packing written
here with Python integers), and coremltools' own weight-compression API on a small program."""

from __future__ import annotations

import coremltools as ct
import coremltools.optimize.coreml as cto
import numpy as np
import pytest
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.frontend.milproto.load import load as milproto_load
from coremltools.converters.mil.mil import types
from coremltools.models.utils import _convert_model_spec_to_pymil_prog

from tests.executor.support import run, run1


def _pack_lsb_first(values: list[int], nbits: int) -> np.ndarray:
    """MIL packing: value k occupies bits k*nbits .. (k+1)*nbits-1 of a little-endian bit stream."""
    acc = 0
    for k, v in enumerate(values):
        acc |= int(v) << (k * nbits)
    nbytes = -(-len(values) * nbits // 8)
    return np.frombuffer(acc.to_bytes(nbytes, "little"), dtype=np.uint8).copy()


def _prog_returning(make_op, opset=ct.target.iOS16):
    """A program with a dummy input whose outputs are the constexpr op's outputs."""
    @mb.program(input_specs=[mb.TensorSpec((1,))], opset_version=opset)
    def prog(x):
        return make_op()

    return lambda: run(prog, x=np.zeros(1, np.float32))


@pytest.mark.parametrize("zp_dtype", [np.uint8, np.int8, np.float32])
@pytest.mark.parametrize("scale_dtype", [np.float32, np.float16])
def test_affine_dequantize_per_axis(zp_dtype: type, scale_dtype: type) -> None:
    rng = np.random.default_rng(0)
    q = rng.integers(0, 120, size=(3, 4)).astype(np.uint8 if zp_dtype != np.int8 else np.int8)
    if zp_dtype == np.float32:
        q = q.astype(np.uint8)
    zp = np.array([1, 5, 9], dtype=zp_dtype)
    scale = np.array([0.5, 0.25, 2.0], dtype=scale_dtype)
    go = _prog_returning(lambda: mb.constexpr_affine_dequantize(
        quantized_data=q, zero_point=zp, scale=scale, axis=0))
    (out,) = go()
    ref = scale.astype(np.float64)[:, None] * (q.astype(np.float64) - zp.astype(np.float64)[:, None])
    assert out.dtype == scale_dtype
    np.testing.assert_array_equal(out, ref.astype(scale_dtype))


def test_affine_dequantize_scalar_negative_axis() -> None:
    q = np.arange(6, dtype=np.int8).reshape(2, 3)
    go = _prog_returning(lambda: mb.constexpr_affine_dequantize(
        quantized_data=q, zero_point=np.int8(2), scale=np.float32(0.1), axis=-1))
    np.testing.assert_allclose(go()[0], 0.1 * (np.arange(6).reshape(2, 3) - 2), rtol=1e-6)


def test_constexpr_cast() -> None:
    v = np.array([[1.5, -2.25], [65504.0, 1e-4]], np.float16)
    go = _prog_returning(lambda: mb.constexpr_cast(source_val=v, output_dtype="fp32"))
    (out,) = go()
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, v.astype(np.float64))


@pytest.mark.parametrize("nbits", [1, 2, 4, 6, 8])
def test_lut_to_dense_ios16(nbits: int) -> None:
    rng = np.random.default_rng(nbits)
    shape = (3, 5)
    idx = rng.integers(0, 2**nbits, size=15)
    lut = rng.normal(size=2**nbits).astype(np.float32)
    packed = _pack_lsb_first(list(idx), nbits)
    go = _prog_returning(lambda: mb.constexpr_lut_to_dense(
        indices=packed, lut=lut, shape=np.array(shape, np.uint32)))
    np.testing.assert_array_equal(go()[0], np.array([lut[i] for i in idx]).reshape(shape))


def test_sparse_to_dense_ios16() -> None:
    bits = [0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0]  # 11 elements, 5 set
    data = np.array([1.0, 2.0, 3.0, 4.0, 5.0], np.float32)
    mask = _pack_lsb_first(bits, 1)
    go = _prog_returning(lambda: mb.constexpr_sparse_to_dense(
        nonzero_data=data, mask=mask, shape=np.array([11], np.uint32)))
    np.testing.assert_array_equal(go()[0], [0, 0, 1, 2, 0, 3, 0, 0, 4, 5, 0])


def test_lut_to_dense_ios18_per_group_doc_case1() -> None:
    indices = np.array([2, 3, 3, 0, 1, 0, 3, 0, 2, 1, 0, 3], dtype=types.np_uint2_dtype).reshape(6, 2)
    lut = np.array([1.0, 5.0, 9.0, 13.0, 2.0, 10.0, 18.0, 26.0], np.float16).reshape(2, 1, 4, 1)
    go = _prog_returning(lambda: mb.constexpr_lut_to_dense(indices=indices, lut=lut), ct.target.iOS18)
    expected = [[9, 13], [13, 1], [5, 1], [26, 2], [18, 10], [2, 26]]  # from the MIL doc
    (out,) = go()
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("vector_axis", [1, 2])
def test_lut_to_dense_ios18_vector_doc_case2(vector_axis: int) -> None:
    indices = np.array([0, 0, 1, 0, 1, 1, 0, 0], dtype=types.np_uint1_dtype).reshape(2, 2, 2)
    a, b = [10, 11, 12], [20, 21, 22]
    lut = np.array(a + b, np.int8).reshape(1, 1, 1, 2, 3)
    go = _prog_returning(lambda: mb.constexpr_lut_to_dense(
        indices=indices, lut=lut, vector_axis=vector_axis), ct.target.iOS18)
    if vector_axis == 1:  # MIL doc case 2.1
        expected = [[[a[0], a[0]], [a[1], a[1]], [a[2], a[2]], [b[0], a[0]], [b[1], a[1]], [b[2], a[2]]],
                    [[b[0], b[0]], [b[1], b[1]], [b[2], b[2]], [a[0], a[0]], [a[1], a[1]], [a[2], a[2]]]]
    else:  # case 2.2
        expected = [[a + a, b + a], [b + b, a + a]]
    np.testing.assert_array_equal(go()[0], expected)


def test_sparse_to_dense_ios18() -> None:
    mask = np.array([[1, 0, 1], [0, 0, 1]], dtype=types.np_uint1_dtype)
    data = np.array([7, -3, 4], np.int8)
    go = _prog_returning(lambda: mb.constexpr_sparse_to_dense(nonzero_data=data, mask=mask), ct.target.iOS18)
    np.testing.assert_array_equal(go()[0], [[7, 0, -3], [0, 0, 4]])


def test_blockwise_shift_scale() -> None:
    data = np.arange(24, dtype=np.int8).reshape(4, 6) - 12
    scale = np.array([[0.5, 2.0, 1.0], [0.25, 1.5, 3.0]], np.float32)  # blocks of 2 x 2
    offset = np.array([[1, 2, 3], [-1, 0, 4]], np.int8)
    go = _prog_returning(lambda: mb.constexpr_blockwise_shift_scale(data=data, scale=scale, offset=offset),
                         ct.target.iOS18)
    ref = np.empty((4, 6))
    for i in range(4):
        for j in range(6):
            ref[i, j] = scale[i // 2, j // 2] * (float(data[i, j]) - offset[i // 2, j // 2])
    np.testing.assert_allclose(go()[0], ref, rtol=1e-6)


def test_blockwise_shift_scale_int4_no_offset_fp16() -> None:
    data = np.array([[-8, 7, 0, 3]], dtype=types.np_int4_dtype)
    scale = np.array([[0.5, 0.125]], np.float16)
    go = _prog_returning(lambda: mb.constexpr_blockwise_shift_scale(data=data, scale=scale), ct.target.iOS18)
    (out,) = go()
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, [[-4.0, 3.5, 0.0, 0.375]])


_DOC_MASK = [[1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 1], [0, 1, 1, 0, 1, 0], [0, 0, 0, 1, 0, 0]]


def test_lut_to_sparse_doc_example() -> None:
    mask = np.array(_DOC_MASK, dtype=types.np_uint1_dtype)
    nz = np.array([0, 1, 1, 0, 1, 1, 0, 0, 1], dtype=types.np_uint1_dtype)
    lut = np.array([2.0, 3.0], np.float16).reshape(1, 1, 2, 1)
    go = _prog_returning(lambda: mb.constexpr_lut_to_sparse(
        indices_mask=mask, indices_nonzero_data=nz, lut=lut), ct.target.iOS18)
    out_mask, out_data = go()
    np.testing.assert_array_equal(out_mask, _DOC_MASK)
    np.testing.assert_array_equal(out_data, [2.0, 3.0, 3.0, 2.0, 3.0, 3.0, 2.0, 2.0, 3.0])


def test_lut_to_sparse_vector_doc_example_then_dense() -> None:
    mask = np.array(_DOC_MASK, dtype=types.np_uint1_dtype)
    nz = np.array([0, 1, 1, 0, 1, 1, 0, 0, 1], dtype=types.np_uint1_dtype)
    lut = np.array([[2.0, 2.5], [3.0, 3.5]], np.float32).reshape(1, 1, 2, 2)

    def make():
        m, d = mb.constexpr_lut_to_sparse(indices_mask=mask, indices_nonzero_data=nz, lut=lut, vector_axis=0)
        return mb.constexpr_sparse_to_dense(nonzero_data=d, mask=m)

    (dense,) = _prog_returning(make, ct.target.iOS18)()
    # the doc's picture: every index expands to a 2-vector down axis 0
    ref = np.zeros((8, 6), np.float32)
    k = 0
    for i, row in enumerate(_DOC_MASK):
        for j, bit in enumerate(row):
            if bit:
                ref[2 * i : 2 * i + 2, j] = lut[0, 0, int(nz[k]), :]
                k += 1
    np.testing.assert_array_equal(dense, ref)


def test_sparse_blockwise_shift_scale_doc_example() -> None:
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1], [1, 1, 0, 0]], dtype=types.np_uint1_dtype)
    nz = np.array([10, 11, 3, 4, 5, 6, 7, 8, 9], np.int8)
    scale = np.array([[0.1, 0.2, 0.3, 0.4]], np.float32)
    offset = np.array([[1, 2, 3, 4]], np.int8)
    go = _prog_returning(lambda: mb.constexpr_sparse_blockwise_shift_scale(
        data_mask=mask, nonzero_data=nz, scale=scale, offset=offset), ct.target.iOS18)
    out_mask, out_data = go()
    np.testing.assert_array_equal(out_mask, mask)
    np.testing.assert_allclose(out_data, [0.9, 1.8, 0.2, 0.4, 0.6, 0.9, 1.2, 0.7, 1.4], rtol=1e-6)


# -- coremltools' compression API: what it really emits must decompress to the expected weights --

W = np.random.default_rng(0).normal(size=(16, 32)).astype(np.float32)


def _compressed_weight(target, compress) -> tuple[np.ndarray, list[str]]:
    """Compress a linear layer with ``compress``; return the executed decompressed weight and op types."""
    @mb.program(input_specs=[mb.TensorSpec((32, 32))], opset_version=target)
    def prog(x):
        return mb.linear(x=x, weight=W)

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=target,
                       skip_model_load=True, compute_precision=ct.precision.FLOAT32)
    small = compress(model)
    loaded = _convert_model_spec_to_pymil_prog(small, small.get_spec().specificationVersion, milproto_load)
    ops = [op.op_type for op in loaded.functions["main"].operations]
    eye = np.eye(32, dtype=np.float32)  # linear(I) = W^T
    return run1(loaded, x=eye).T, ops


TARGETS = [ct.target.iOS16, ct.target.iOS18]


def _cfg(op_config) -> cto.OptimizationConfig:
    return cto.OptimizationConfig(global_config=op_config)


@pytest.mark.parametrize("target", TARGETS)
def test_compression_linear_quantize(target) -> None:
    cfg = _cfg(cto.OpLinearQuantizerConfig(mode="linear_symmetric", weight_threshold=0))
    w, ops = _compressed_weight(target, lambda m: cto.linear_quantize_weights(m, cfg))
    assert ("constexpr_affine_dequantize" if target == ct.target.iOS16 else "constexpr_blockwise_shift_scale") in ops
    # per-output-channel symmetric int8: error at most half a step, step = max|row| / 127
    step = np.abs(W).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(w - W) <= 0.5 * step * (1 + 1e-5))


def test_compression_blockwise_int4_ios18() -> None:
    cfg = _cfg(cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int4", granularity="per_block",
                                           block_size=8, weight_threshold=0))
    w, ops = _compressed_weight(ct.target.iOS18, lambda m: cto.linear_quantize_weights(m, cfg))
    assert "constexpr_blockwise_shift_scale" in ops
    blocks = np.abs(W).reshape(16, 4, 8).max(axis=-1, keepdims=True)
    step = np.repeat(blocks, 8, axis=-1).reshape(16, 32) / 7
    assert np.all(np.abs(w - W) <= 0.5 * step * (1 + 1e-5))


@pytest.mark.parametrize("target", TARGETS)
def test_compression_palettize_uniform(target) -> None:
    cfg = _cfg(cto.OpPalettizerConfig(nbits=4, mode="uniform", weight_threshold=0))
    w, ops = _compressed_weight(target, lambda m: cto.palettize_weights(m, cfg))
    assert "constexpr_lut_to_dense" in ops
    assert len(np.unique(w)) <= 16
    # 16 evenly spaced levels over the weight range: error at most half a level spacing
    spacing = (W.max() - W.min()) / 15
    assert np.abs(w - W).max() <= 0.5 * spacing * (1 + 1e-4)


@pytest.mark.parametrize("target", TARGETS)
def test_compression_prune_magnitude(target) -> None:
    cfg = _cfg(cto.OpMagnitudePrunerConfig(target_sparsity=0.5, weight_threshold=0))
    w, ops = _compressed_weight(target, lambda m: cto.prune_weights(m, cfg))
    assert "constexpr_sparse_to_dense" in ops
    kept = w != 0
    assert kept.sum() == W.size // 2
    np.testing.assert_array_equal(w[kept], W[kept])
    assert np.abs(W[kept]).min() >= np.abs(W[~kept]).max()


def test_compression_joint_prune_then_palettize_ios18() -> None:
    prune = _cfg(cto.OpMagnitudePrunerConfig(target_sparsity=0.5, weight_threshold=0))
    pal = _cfg(cto.OpPalettizerConfig(nbits=2, mode="uniform", weight_threshold=0))
    w, ops = _compressed_weight(
        ct.target.iOS18,
        lambda m: cto.palettize_weights(cto.prune_weights(m, prune), pal, joint_compression=True),
    )
    assert "constexpr_lut_to_sparse" in ops
    kept = w != 0
    assert kept.sum() <= W.size // 2
    assert len(np.unique(w[kept])) <= 4
    kept_ref = np.abs(W) >= np.median(np.abs(W))
    spacing = (W[kept_ref].max() - W[kept_ref].min()) / 3
    assert np.abs(w[kept] - W[kept]).max() <= 0.5 * spacing * (1 + 1e-4)


def test_compression_joint_prune_then_quantize_ios18() -> None:
    prune = _cfg(cto.OpMagnitudePrunerConfig(target_sparsity=0.5, weight_threshold=0))
    quant = _cfg(cto.OpLinearQuantizerConfig(mode="linear_symmetric", weight_threshold=0))
    w, ops = _compressed_weight(
        ct.target.iOS18,
        lambda m: cto.linear_quantize_weights(cto.prune_weights(m, prune), quant, joint_compression=True),
    )
    assert "constexpr_sparse_blockwise_shift_scale" in ops
    kept = np.abs(W) >= np.median(np.abs(W))
    np.testing.assert_array_equal(w[~kept], 0)
    step = np.abs(W).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(w - np.where(kept, W, 0)) <= 0.5 * step * (1 + 1e-5))
