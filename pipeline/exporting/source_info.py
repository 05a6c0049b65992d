"""PyTorch source locations on ONNX nodes, so that Netron (and our error messages) show them.

The dynamo exporter records a stack trace per node in ``metadata_props`` under
``pkg.torch.onnx.stack_trace`` (outermost frame first, ``File "f.py", line 12, in forward``).  The
TorchScript exporter (run with ``verbose=True``) puts its trace in ``doc_string`` (innermost first,
``f.py(12): forward``); we move that into the same metadata key, in the dynamo format.  Each
node's ``doc_string`` then becomes a short ``file:line``: the innermost frame outside torch's own
code, i.e. the line of the user's model that produced the node.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

import onnx

log = logging.getLogger(__name__)

STACK_KEY = "pkg.torch.onnx.stack_trace"
_DYNAMO_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)')
_TS_FRAME = re.compile(r"^\s*(?P<file>.+?)\((?P<line>\d+)\): (?P<func>\S+)\s*$")

Frame = tuple[str, int, str]


def _internal_dirs() -> tuple[str, ...]:
    """Directories whose frames are library internals, not the user's model code."""
    dirs = []
    for name in ("torch", "onnxscript"):
        try:
            mod = __import__(name)
        except ImportError:
            continue
        file = getattr(mod, "__file__", None)
        if file:
            dirs.append(str(Path(file).resolve().parent) + os.sep)
    dirs.append(str(Path(__file__).resolve().parent.parent) + os.sep)  # pipeline/ itself
    return tuple(dirs)


_INTERNAL: tuple[str, ...] | None = None


def is_internal(file: str) -> bool:
    """Whether a frame's file belongs to torch, onnxscript or this pipeline."""
    global _INTERNAL
    if _INTERNAL is None:
        _INTERNAL = _internal_dirs()
    try:
        resolved = str(Path(file).resolve())
    except OSError:
        resolved = file
    return resolved.startswith(_INTERNAL) or file.startswith("<")


def parse_stack(text: str) -> list[Frame]:
    """Frames of a dynamo or TorchScript stack trace, outermost first."""
    dynamo = [m for m in map(_DYNAMO_FRAME.match, text.splitlines()) if m]
    if dynamo:
        return [(m["file"], int(m["line"]), m["func"]) for m in dynamo]
    ts = [m for m in map(_TS_FRAME.match, text.splitlines()) if m]
    return [(m["file"], int(m["line"]), m["func"]) for m in reversed(ts)]


def format_stack(frames: Iterable[Frame]) -> str:
    """Frames (outermost first) in the dynamo exporter's text format."""
    return "\n".join(f'File "{f}", line {line}, in {func}' for f, line, func in frames)


def short_location(file: str, line: int) -> str:
    """``file:line`` with the path relative to the working directory, else its last two parts."""
    path = Path(file)
    try:
        rel = path.resolve().relative_to(Path.cwd().resolve())
        shown = str(rel)
    except (ValueError, OSError):
        shown = str(Path(*path.parts[-2:])) if len(path.parts) >= 2 else file
    return f"{shown}:{line}"


def user_location(frames: list[Frame]) -> str:
    """The innermost frame outside library internals as ``file:line`` ('' for no frames)."""
    if not frames:
        return ""
    for file, line, _ in reversed(frames):
        if not is_internal(file):
            return short_location(file, line)
    file, line, _ = frames[-1]
    return short_location(file, line)


def _meta(node: onnx.NodeProto) -> dict[str, str]:
    return {p.key: p.value for p in node.metadata_props}


def _set_meta(node: onnx.NodeProto, key: str, value: str) -> None:
    for prop in node.metadata_props:
        if prop.key == key:
            prop.value = value
            return
    node.metadata_props.add(key=key, value=value)


def annotate(model: onnx.ModelProto) -> int:
    """Give every node a ``file:line`` doc_string and a stack trace in metadata; returns how
    many nodes got a location."""
    located = 0
    for node in model.graph.node:
        trace = _meta(node).get(STACK_KEY, "")
        frames = parse_stack(trace) if trace else []
        if not frames and node.doc_string:
            frames = parse_stack(node.doc_string)
            if frames:
                _set_meta(node, STACK_KEY, format_stack(frames))
        where = user_location(frames)
        if where:
            node.doc_string = where
            located += 1
        elif frames == [] and node.doc_string and "\n" in node.doc_string:
            node.doc_string = ""
    log.debug("source locations on %d of %d nodes", located, len(model.graph.node))
    return located


def ensure_node_names(model: onnx.ModelProto) -> None:
    """Give unnamed nodes a unique ``<op_type>_<i>`` name (Netron and errors refer to names)."""
    taken = {n.name for n in model.graph.node if n.name}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def carry_over(source: onnx.ModelProto, target: onnx.ModelProto) -> int:
    """Copy doc_string and metadata from ``source`` nodes to same-named ``target`` nodes that lost
    them (a simplifier may rebuild nodes); returns how many nodes were restored."""
    by_name = {n.name: n for n in source.graph.node if n.name}
    restored = 0
    for node in target.graph.node:
        old = by_name.get(node.name)
        if old is None or old.op_type != node.op_type:
            continue
        if not node.doc_string and old.doc_string:
            node.doc_string = old.doc_string
            restored += 1
        have = {p.key for p in node.metadata_props}
        for prop in old.metadata_props:
            if prop.key not in have:
                node.metadata_props.add(key=prop.key, value=prop.value)
    return restored


def location_of(node: onnx.NodeProto) -> str:
    """A node's ``file:line`` (from doc_string or metadata), '' when unknown."""
    if node.doc_string and "\n" not in node.doc_string and ":" in node.doc_string:
        return node.doc_string
    return user_location(parse_stack(_meta(node).get(STACK_KEY, "")))
