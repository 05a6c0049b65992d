"""Activations in our custom domain (opt-in): HardTanh for aten::hardtanh and aten::relu6.

Both exporters already turn ``aten::hardtanh`` (and ``relu6``) into a standard ``Clip``; this
entry exists for callers who want one ``pipeline.custom::HardTanh`` node (issue 5), so it is
``default=False``: name it in ``include``.  Call :func:`symbolics.attach_functions` on the
exported model to give onnxruntime the node's standard-op body.
"""

from __future__ import annotations

from typing import Any

from symbolics import CUSTOM_DOMAIN
from symbolics._common import builtin, const
from symbolics.domain import custom


def _hardtanh_legacy(g: Any, input: Any, min_val: Any, max_val: Any) -> Any:
    out = g.op(f"{CUSTOM_DOMAIN}::HardTanh", input, min_val_f=float(const(min_val, "f")),
               max_val_f=float(const(max_val, "f")))
    out.setType(input.type())  # elementwise: same type and shape as the input
    return out


@builtin("aten::hardtanh", opset=18, legacy=_hardtanh_legacy, default=False,
         emits=(f"{CUSTOM_DOMAIN}::HardTanh",))
def hardtanh(input: Any, min_val: float = -1.0, max_val: float = 1.0) -> Any:
    """y = min(max(x, min_val), max_val) as one pipeline.custom::HardTanh node."""
    return custom.HardTanh(input, min_val=float(min_val), max_val=float(max_val))


def _relu6_legacy(g: Any, input: Any) -> Any:
    out = g.op(f"{CUSTOM_DOMAIN}::HardTanh", input, min_val_f=0.0, max_val_f=6.0)
    out.setType(input.type())
    return out


@builtin("aten::relu6", opset=18, legacy=_relu6_legacy, default=False,
         emits=(f"{CUSTOM_DOMAIN}::HardTanh",))
def relu6(input: Any) -> Any:
    """y = min(max(x, 0), 6) as one pipeline.custom::HardTanh node."""
    return custom.HardTanh(input, min_val=0.0, max_val=6.0)
