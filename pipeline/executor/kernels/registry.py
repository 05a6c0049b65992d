"""The executor's kernel table and the decorator that fills it.

A kernel computes one MIL op with numpy (or torch CPU).  Contract:

* registered with ``@mil_kernel("op_name", since=15)``; ``since`` is the iOS opset number
  (15 = iOS15/macOS12 ... 18 = iOS18/macOS15).  Register another function with a higher
  ``since`` where an opset changed the op's semantics; lookup takes the newest one that is
  ``<=`` the program's opset.
* called with the op's inputs as keyword arguments, named as in the MIL op definition:
  numpy arrays (0-d arrays for scalars), Python lists of arrays for tuple inputs (``concat``'s
  ``values``), strings/bools for string/bool consts; optional inputs the op does not have are
  not passed, so give them Python defaults as the MIL docs state.
* ``@mil_kernel(..., ctx=True)`` kernels also receive a first positional argument ``ctx``
  (:class:`pipeline.executor.runner.KernelContext`): the MIL operation (``ctx.op``), the
  program opset, ``ctx.run_block(block, values)`` for control flow, and the state store.
* returns one array, or a tuple/list with one array per op output.  The runner casts each result
  to the op's declared output dtype (so an fp16 op yields fp16, an int32 op int32): compute in the
  input dtype where it matters for precision, and do not rely on the cast to fix wrong types of
  *values*.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.registry import Registry

KERNELS: Registry[Callable[..., Any]] = Registry("executor kernel")

IOS15, IOS16, IOS17, IOS18 = 15, 16, 17, 18


def mil_kernel(
    name: str, *, since: int = IOS15, ctx: bool = False, override: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a kernel for MIL op ``name`` valid from iOS opset ``since`` on."""
    return KERNELS.register(name, since=since, override=override, ctx=ctx)
