"""Random generators: RandomNormal, RandomUniform, RandomNormalLike, RandomUniformLike,
Bernoulli, Multinomial.

MIL has random_normal, random_uniform and random_categorical; they give the same distributions
as ONNX but not the same numbers (no generator is shared between onnxruntime and Core ML, and
ONNX leaves the generator unspecified), so only shapes, types and statistics can be compared.
A ``seed`` attribute becomes MIL's integer seed (its integral part); without one, -1 asks for a
fresh draw on every prediction, as ONNX does.

Spec changes read: RandomNormal/RandomUniform/*Like 1, 22 (types only); Bernoulli 15, 22;
Multinomial 7, 22.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from onnx import TensorProto

from pipeline.errors import UnsupportedOpError
from pipeline.lowering.context import LowerContext
from pipeline.lowering.dtypes import legal_numpy
from pipeline.lowering.node import Node
from pipeline.lowering.ops.shape import static_shape
from pipeline.lowering.registry import composite_op, onnx_op

log = logging.getLogger(__name__)


def _seed(node: Node) -> np.int32:
    seed = node.attrs.get("seed")
    return np.int32(-1 if seed is None else int(seed))


def _float_type(node: Node, elem: int) -> np.dtype:
    dtype = legal_numpy(elem)
    if dtype.kind != "f":
        raise UnsupportedOpError(
            f"lower: {node.describe()}: dtype {TensorProto.DataType.Name(elem)} is not a float type; fix the model"
        )
    return dtype


def _like(ctx: LowerContext, node: Node) -> tuple[Any, np.dtype]:
    """The shape of input 0 (a constant when static) and the output dtype (attr, else x's)."""
    x = node.input(0)
    dims = static_shape(x)
    shape = np.asarray(dims, np.int32) if dims is not None else ctx.mb.shape(x=x)
    elem = node.attrs.get("dtype")
    return shape, (_float_type(node, int(elem)) if elem is not None else ctx.np_dtype(x))


def _static_shape_attr(node: Node) -> np.ndarray:
    shape = node.attrs.get("shape")
    if not shape:
        raise UnsupportedOpError(f"lower: {node.describe()}: the shape attribute is missing; fix the model")
    return np.asarray(shape, np.int32)


def _normal(ctx: LowerContext, node: Node, shape: Any, dtype: np.dtype) -> Any:
    return ctx.mb.random_normal(
        shape=shape, mean=dtype.type(node.attrs.get("mean", 0.0)),
        stddev=dtype.type(node.attrs.get("scale", 1.0)), seed=_seed(node),
    )


def _uniform(ctx: LowerContext, node: Node, shape: Any, dtype: np.dtype) -> Any:
    return ctx.mb.random_uniform(
        shape=shape, low=dtype.type(node.attrs.get("low", 0.0)),
        high=dtype.type(node.attrs.get("high", 1.0)), seed=_seed(node),
    )


@onnx_op("RandomNormal", since=1)
def random_normal(ctx: LowerContext, node: Node) -> Any:
    """y ~ N(mean, scale^2) of the shape attribute.  MIL: random_normal."""
    return _normal(ctx, node, _static_shape_attr(node), _float_type(node, int(node.attrs.get("dtype", 1))))


@onnx_op("RandomUniform", since=1)
def random_uniform(ctx: LowerContext, node: Node) -> Any:
    """y ~ U[low, high) of the shape attribute.  MIL: random_uniform."""
    return _uniform(ctx, node, _static_shape_attr(node), _float_type(node, int(node.attrs.get("dtype", 1))))


@onnx_op("RandomNormalLike", since=1)
def random_normal_like(ctx: LowerContext, node: Node) -> Any:
    """y ~ N(mean, scale^2) shaped like x.  MIL: random_normal (shape for flexible inputs)."""
    shape, dtype = _like(ctx, node)
    return _normal(ctx, node, shape, dtype)


@onnx_op("RandomUniformLike", since=1)
def random_uniform_like(ctx: LowerContext, node: Node) -> Any:
    """y ~ U[low, high) shaped like x.  MIL: random_uniform (shape for flexible inputs)."""
    shape, dtype = _like(ctx, node)
    return _uniform(ctx, node, shape, dtype)


@composite_op("Bernoulli", since=15)
def bernoulli(ctx: LowerContext, node: Node) -> Any:
    """y_i = 1 with probability p_i, else 0 (dtype attr, else p's type).

    MIL: random_uniform, less, cast (u < p with u ~ U[0, 1) has probability p; MIL's
    random_bernoulli takes one probability for the whole tensor, ONNX one per element).
    """
    p = node.input(0)
    dims = static_shape(p)
    shape = np.asarray(dims, np.int32) if dims is not None else ctx.mb.shape(x=p)
    dtype = ctx.np_dtype(p)
    u = ctx.mb.random_uniform(shape=shape, low=dtype.type(0.0), high=dtype.type(1.0), seed=_seed(node))
    hit = ctx.mb.less(x=u, y=p)
    elem = node.attrs.get("dtype")
    out = legal_numpy(int(elem)) if elem is not None else dtype
    return hit if out == np.bool_ else ctx.cast(hit, out)


@composite_op("Multinomial", since=7)
def multinomial(ctx: LowerContext, node: Node) -> Any:
    """y[b, s] ~ Categorical(softmax(x[b])) for s < sample_size (x holds unnormalized log-probabilities).

    MIL: random_categorical (mode "logits"), cast to int32.
    """
    x = node.input(0)
    if x.rank != 2:
        raise UnsupportedOpError(f"lower: {node.describe()}: input must be [batch, classes], got rank {x.rank}")
    size = int(node.attrs.get("sample_size", 1))
    y = ctx.mb.random_categorical(x=x, mode="logits", size=size, seed=_seed(node))
    return ctx.cast(y, np.int32)
