"""``--localize``: find the first ONNX node whose output diverges from onnxruntime.

onnxruntime runs the model with every node output exposed as a graph output; our executor runs
the freshly built MIL program (before coremltools' passes, which fuse ops and rename values) and
reports every value it computes.  The driver names each MIL value after the ONNX tensor it
computes, so the two meet by name.  Nodes are visited in graph order; the first output outside
tolerance names the culprit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper

from pipeline.lowering.context import NodeRecord
from pipeline.lowering.interface import IOAdapter
from pipeline.parity import compare_arrays


@dataclasses.dataclass
class Divergence:
    """The first node whose output differs beyond tolerance."""

    node: str
    op_type: str
    output: str
    max_abs: float
    max_rel: float
    source: str | None
    compared: int

    def line(self) -> str:
        where = f" ({self.source})" if self.source else ""
        return (
            f"first divergence at node '{self.node}' ({self.op_type}){where}, output "
            f"'{self.output}': max_abs={self.max_abs:.3g} max_rel={self.max_rel:.3g} "
            f"({self.compared} intermediate tensors compared before it)"
        )


def _expose_all(model: onnx.ModelProto) -> onnx.ModelProto:
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    have = {o.name for o in exposed.graph.output}
    typed = {vi.name: vi for vi in exposed.graph.value_info}
    for node in exposed.graph.node:
        for name in node.output:
            if name and name not in have:
                exposed.graph.output.append(typed.get(name) or helper.make_empty_tensor_value_info(name))
                have.add(name)
    return exposed


def localize(
    model: onnx.ModelProto,
    program: Any,
    adapter: IOAdapter,
    records: Sequence[NodeRecord],
    feeds: Mapping[str, np.ndarray],
    *,
    atol: float,
    rtol: float,
) -> tuple[Divergence | None, int]:
    """Compare every intermediate tensor; return the first divergence (or None) and the count."""
    from pipeline.executor import execute
    from pipeline.lowering.reference import run_onnxruntime

    expected = run_onnxruntime(_expose_all(model), feeds)
    seen: dict[str, np.ndarray] = {}
    execute(program, adapter.adapt_feeds(feeds), observe=lambda name, value: seen.__setitem__(name, value))
    compared = 0
    for record in records:
        for name in record.outputs:
            if name not in expected or name not in seen or not isinstance(seen[name], np.ndarray):
                continue
            ref = np.asarray(expected[name])
            got = np.asarray(seen[name])
            if got.size == ref.size and got.shape != ref.shape:
                got = got.reshape(ref.shape)
            if ref.dtype != got.dtype and ref.dtype.kind in "biuf":
                got = got.astype(ref.dtype)
            row = compare_arrays(name, got, ref, atol=atol, rtol=rtol)
            if not row.ok:
                return Divergence(record.node, record.op_type, name, row.max_abs, row.max_rel,
                                  record.source, compared), compared
            compared += 1
    return None, compared
