"""The unsupported-op list stays true: every default-domain op is lowered or listed with a reason,
and the driver's error quotes the reason."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from pipeline.errors import UnsupportedOpError
from pipeline.lowering import lower
from pipeline.lowering.composites import COMPOSITES
from pipeline.lowering.registry import HANDLERS
from pipeline.lowering.unsupported import UNSUPPORTED, markdown


def _default_domain_ops() -> set[str]:
    return {s.name for s in onnx.defs.get_all_schemas_with_history() if s.domain == ""}


def _lowered() -> set[str]:
    return set(HANDLERS.names("")) | {e for e in COMPOSITES.names("")}


def test_every_default_domain_op_is_lowered_or_listed() -> None:
    missing = sorted(_default_domain_ops() - _lowered() - set(UNSUPPORTED))
    assert not missing, f"ops neither lowered nor in UNSUPPORTED: {missing}"


def test_listed_ops_are_really_unlowered_and_explained() -> None:
    both = sorted(set(UNSUPPORTED) & _lowered())
    assert not both, f"ops lowered but still listed as unsupported: {both}"
    unknown = sorted(set(UNSUPPORTED) - _default_domain_ops())
    assert not unknown, f"UNSUPPORTED names ops onnx does not define: {unknown}"
    for op, why in UNSUPPORTED.items():
        assert why.strip() and "\n" not in why, f"{op}: the reason must be one non-empty line"


def test_markdown_lists_every_op() -> None:
    text = markdown()
    assert text.startswith("## Unsupported ONNX ops")
    for op, why in UNSUPPORTED.items():
        assert f"| {op} | {why} |" in text


def test_driver_error_quotes_the_reason() -> None:
    node = helper.make_node("BitCast", ["x"], ["y"], to=TensorProto.INT32)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, [3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 26)])
    model.ir_version = 10
    with pytest.raises(UnsupportedOpError) as info:
        lower(model, target="iOS16", verify=False, feeds={"x": np.zeros(3, np.float32)})
    message = str(info.value)
    assert "BitCast" in message and UNSUPPORTED["BitCast"] in message


def test_readme_lists_every_unsupported_op_with_its_reason() -> None:
    from pathlib import Path

    from pipeline.lowering.unsupported import UNSUPPORTED

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("## Unsupported ONNX ops"):]
    section = section[: section.index("\n## ", 4)]
    rows = {line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ") and "---" not in line}
    assert rows - {"ONNX op"} == set(UNSUPPORTED)
