"""Kernels of MIL's control-flow and list ops (coremltools defs: iOS15/control_flow.py).

Ops: cond, while_loop, select, identity, make_list, list_length, list_write, list_read,
list_gather, list_scatter.  (``const`` and ``_const_symbolic`` are read by the runner.)

A MIL list value is a :class:`ListValue`; list ops return a new one and never change their input,
so a list carried through a ``while_loop`` behaves as a value.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.errors import ExecutorError
from pipeline.executor.kernels.registry import mil_kernel

log = logging.getLogger(__name__)

#: A while_loop running longer than this is taken to be stuck.
MAX_LOOP_ITERATIONS = 10_000_000

_DTYPES = {
    "fp16": np.float16, "fp32": np.float32, "fp64": np.float64, "int32": np.int32,
    "int64": np.int64, "int8": np.int8, "uint8": np.uint8, "int16": np.int16,
    "uint16": np.uint16, "bool": np.bool_,
}


class ListValue:
    """A MIL list: element dtype, element shape (None for unknown dims), growable or not."""

    __slots__ = ("dtype", "dynamic", "elem_shape", "items")

    def __init__(
        self,
        items: list[np.ndarray | None],
        dtype: np.dtype,
        elem_shape: tuple[int | None, ...] | None,
        dynamic: bool,
    ) -> None:
        self.items = items
        self.dtype = np.dtype(dtype)
        self.elem_shape = elem_shape
        self.dynamic = dynamic

    def __len__(self) -> int:
        return len(self.items)

    def replaced(self, items: list[np.ndarray | None]) -> ListValue:
        return ListValue(items, self.dtype, self.elem_shape, self.dynamic)

    def read(self, index: int) -> np.ndarray:
        """Element ``index``; an unwritten element of known shape reads as zeros."""
        if not 0 <= index < len(self.items):
            raise IndexError(f"list index {index} out of range for a list of {len(self.items)}")
        item = self.items[index]
        if item is not None:
            return item
        if self.elem_shape is None or any(d is None for d in self.elem_shape):
            raise ValueError(f"list element {index} was never written and its shape is unknown")
        return np.zeros(self.elem_shape, self.dtype)  # type: ignore[arg-type]

    def written(self, updates: dict[int, np.ndarray]) -> ListValue:
        """A copy with ``updates`` (index -> value) applied, growing a dynamic list as needed."""
        items = list(self.items)
        for index, value in updates.items():
            if index < 0:
                raise IndexError(f"negative list index {index}")
            if index >= len(items):
                if not self.dynamic:
                    raise IndexError(
                        f"list index {index} out of range for a fixed-length list of {len(items)}"
                    )
                items.extend([None] * (index + 1 - len(items)))
            value = np.asarray(value)
            if self.elem_shape is not None and not _shape_fits(value.shape, self.elem_shape):
                raise ValueError(
                    f"list element shape {value.shape} does not match the list's {self.elem_shape}"
                )
            items[index] = value.astype(self.dtype, copy=False)
        return self.replaced(items)

    def __repr__(self) -> str:
        return f"ListValue(len={len(self.items)}, dtype={self.dtype}, elem_shape={self.elem_shape})"


def _shape_fits(shape: tuple[int, ...], declared: tuple[int | None, ...]) -> bool:
    return len(shape) == len(declared) and all(d is None or d == s for s, d in zip(shape, declared))


def _scalar_int(value: Any) -> int:
    return int(np.asarray(value).reshape(-1)[0])


# -- branches and loops -------------------------------------------------------------------
@mil_kernel("cond", ctx=True)
def cond(ctx: Any, pred: np.ndarray, **_: Any) -> tuple[Any, ...]:
    """Outputs of the true block (``blocks[0]``) if ``pred`` else of the false block."""
    block = ctx.op.blocks[0] if bool(np.asarray(pred).reshape(-1)[0]) else ctx.op.blocks[1]
    return tuple(ctx.run_block(block, {}))


def _bind(block: Any, vals: list[Any]) -> dict[str, Any]:
    inputs = list(block.inputs.values()) if isinstance(block.inputs, dict) else list(block.inputs)
    return {var.name: val for var, val in zip(inputs, vals)}


@mil_kernel("while_loop", ctx=True)
def while_loop(ctx: Any, loop_vars: list[Any], **_: Any) -> tuple[Any, ...]:
    """``while cond(*v): v = body(*v)``; the cond block (``blocks[0]``) is checked first."""
    cond_block, body_block = ctx.op.blocks[0], ctx.op.blocks[1]
    vals = list(loop_vars)
    for _iteration in range(MAX_LOOP_ITERATIONS):
        (keep_going,) = ctx.run_block(cond_block, _bind(cond_block, vals))[:1]
        if not bool(np.asarray(keep_going).reshape(-1)[0]):
            return tuple(vals)
        vals = list(ctx.run_block(body_block, _bind(body_block, vals)))
    raise ExecutorError(
        f"execute: while_loop '{ctx.op.name}' ran {MAX_LOOP_ITERATIONS} iterations without its "
        "condition turning false"
    )


@mil_kernel("select")
def select(cond: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``where(cond, a, b)`` with numpy broadcasting."""
    return np.where(cond, a, b)


@mil_kernel("identity")
def identity(x: Any) -> Any:
    """``x`` unchanged (tensors and lists alike)."""
    return x


# -- lists --------------------------------------------------------------------------------
@mil_kernel("make_list")
def make_list(
    elem_shape: list[Any],
    init_length: np.ndarray | int = 1,
    dynamic_length: bool | np.ndarray = True,
    dtype: str = "fp32",
) -> ListValue:
    """A list of ``init_length`` unwritten elements of ``dtype`` and ``elem_shape``."""
    if dtype not in _DTYPES:
        raise ValueError(f"make_list: unsupported dtype {dtype!r}")
    shape: list[int | None] = []
    for dim in elem_shape:
        dim = dim.item() if isinstance(dim, np.ndarray) and dim.ndim == 0 else dim
        shape.append(int(dim) if isinstance(dim, (int, np.integer)) else None)
    length = _scalar_int(init_length)
    return ListValue([None] * length, np.dtype(_DTYPES[dtype]), tuple(shape), bool(dynamic_length))


@mil_kernel("list_length")
def list_length(ls: ListValue) -> np.ndarray:
    """Number of elements of ``ls``."""
    return np.asarray(len(ls), dtype=np.int32)


@mil_kernel("list_write")
def list_write(ls: ListValue, index: np.ndarray, value: np.ndarray) -> ListValue:
    """``ls`` with element ``index`` set to ``value`` (a dynamic list grows)."""
    return ls.written({_scalar_int(index): value})


@mil_kernel("list_read")
def list_read(ls: ListValue, index: np.ndarray) -> np.ndarray:
    """Element ``index`` of ``ls``."""
    return ls.read(_scalar_int(index))


@mil_kernel("list_gather")
def list_gather(ls: ListValue, indices: np.ndarray) -> np.ndarray:
    """``stack([ls[i] for i in indices])``, shape ``[len(indices)] + elem_shape``."""
    idx = np.asarray(indices).reshape(-1)
    if idx.size == 0:
        if ls.elem_shape is None or any(d is None for d in ls.elem_shape):
            raise ValueError("list_gather: empty gather from a list of unknown element shape")
        return np.zeros((0, *ls.elem_shape), ls.dtype)  # type: ignore[arg-type]
    return np.stack([ls.read(int(i)) for i in idx])


@mil_kernel("list_scatter")
def list_scatter(ls: ListValue, indices: np.ndarray, value: np.ndarray) -> ListValue:
    """``ls`` with ``ls[indices[k]] = value[k]`` for every k (later k win on repeats)."""
    idx = np.asarray(indices).reshape(-1)
    value = np.asarray(value)
    if value.shape[:1] != (idx.size,):
        raise ValueError(
            f"list_scatter: {idx.size} indices but value has leading dim {value.shape[:1]}"
        )
    return ls.written({int(i): value[k] for k, i in enumerate(idx)})
