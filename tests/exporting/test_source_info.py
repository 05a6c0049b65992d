"""PyTorch source locations on nodes: stack parsing, innermost user frame, both exporters."""

from __future__ import annotations

import inspect
from pathlib import Path

import onnx
import pytest

from pipeline.exporting import exporters, source_info
from tests.exporting import support


def _marker_line() -> int:
    lines, start = inspect.getsourcelines(support.Tiny.forward)
    return start + next(i for i, ln in enumerate(lines) if "SOURCE-LINE-TINY" in ln)


def test_parse_dynamo_and_torchscript_formats() -> None:
    dynamo = 'File "/a/model.py", line 12, in forward\n    y = f(x)\n  File "/b/lib.py", line 3, in f\n    z'
    ts = "/b/lib.py(3): f\n/a/model.py(12): forward\n"
    expected = [("/a/model.py", 12, "forward"), ("/b/lib.py", 3, "f")]
    assert source_info.parse_stack(dynamo) == expected
    assert source_info.parse_stack(ts) == expected
    assert source_info.parse_stack(source_info.format_stack(expected)) == expected


def test_user_location_skips_torch_internals() -> None:
    torch_file = str(Path(onnx.__file__).parent.parent / "torch" / "nn" / "modules" / "linear.py")
    frames = [("/work/proj/net.py", 7, "forward"), (torch_file, 134, "forward")]
    assert source_info.user_location(frames).endswith("net.py:7")
    assert source_info.user_location([]) == ""


@pytest.mark.parametrize("which", exporters.EXPORTERS)
def test_nodes_carry_file_line(which: str) -> None:
    module, args = support.tiny()
    out = exporters.export_model(module, args, exporter=which, input_names=["x"], fallback=False)
    model = out.model
    located = source_info.annotate(model)
    assert located > 0
    want = f"support.py:{_marker_line()}"
    relu = [n for n in model.graph.node if n.op_type == "Relu"]
    assert relu and relu[0].doc_string.endswith(want), relu[0].doc_string
    meta = {p.key: p.value for p in relu[0].metadata_props}
    assert "support.py" in meta[source_info.STACK_KEY]
    assert source_info.location_of(relu[0]).endswith(want)


def test_names_and_carry_over() -> None:
    a = onnx.helper.make_node("Relu", ["x"], ["y"], name="keep", doc_string="m.py:3")
    a.metadata_props.add(key=source_info.STACK_KEY, value='File "m.py", line 3, in forward')
    b = onnx.helper.make_node("Neg", ["y"], ["z"])
    src = onnx.helper.make_model(onnx.helper.make_graph([a, b], "g", [], []))
    dst = onnx.ModelProto()
    dst.CopyFrom(src)
    for node in dst.graph.node:
        node.doc_string = ""
        del node.metadata_props[:]
    assert source_info.carry_over(src, dst) == 1
    assert dst.graph.node[0].doc_string == "m.py:3" and len(dst.graph.node[0].metadata_props) == 1
    source_info.ensure_node_names(dst)
    assert dst.graph.node[1].name and dst.graph.node[1].name != "keep"
