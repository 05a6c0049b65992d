"""Where an ONNX node came from in the user's PyTorch code."""

from __future__ import annotations

import re

import onnx

# Keys under which exporters leave a stack trace / source location in node metadata.
_STACK_KEYS = ("pkg.torch.onnx.stack_trace", "pkg.torch.onnx.source_location")
_LINE = re.compile(r'File "([^"]+)", line (\d+)')
_SHORT = re.compile(r"([\w./\\-]+\.py):(\d+)")


def source_line(node: onnx.NodeProto) -> str | None:
    """A short ``file.py:LINE`` for ``node``, from its metadata or doc_string, or None.

    The innermost frame outside torch's own package is the user's line.
    """
    texts = [p.value for p in node.metadata_props if p.key in _STACK_KEYS]
    if node.doc_string:
        texts.append(node.doc_string)
    for text in texts:
        frames = _LINE.findall(text)
        user = [(f, n) for f, n in frames if "/torch/" not in f and "site-packages" not in f]
        if user:
            path, line = user[-1]
            return f"{path.rsplit('/', 1)[-1]}:{line}"
        short = _SHORT.findall(text)
        if short:
            path, line = short[-1]
            return f"{path.rsplit('/', 1)[-1]}:{line}"
    return None
