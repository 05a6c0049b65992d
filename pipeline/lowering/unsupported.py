"""Default-domain ONNX ops that have no lowering, and why.

The driver quotes the reason in its :class:`~pipeline.errors.UnsupportedOpError`; the README
section "Unsupported ONNX ops" is rendered from :data:`UNSUPPORTED` by :func:`markdown`, and a
test checks that every default-domain op of the installed onnx is either lowered (a handler or a
built-in composite) or listed here, so the README stays true.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_NO_STRINGS = "Core ML tensors hold no strings (fp16, fp32, int32, bool only)"

#: ONNX op type (default domain) -> why no MIL lowering exists.  One line each.
UNSUPPORTED: dict[str, str] = {
    "BitCast": "reinterpreting the bits of one type as another has no MIL op, and no arithmetic "
    "composite reproduces NaN payloads or denormals exactly",
    "ImageDecoder": "decoding JPEG/PNG bytes is not a tensor computation; decode before the model "
    "(Core ML image inputs take decoded pixels)",
    "RegexFullMatch": f"{_NO_STRINGS}; regular expressions have no tensor form",
    "StringConcat": _NO_STRINGS,
    "StringNormalizer": _NO_STRINGS,
    "StringSplit": _NO_STRINGS,
    "TfIdfVectorizer": "its string pools have no Core ML form, and the integer form (n-gram "
    "counting with skips against a pool, one comparison per pool entry) comes from scikit-learn "
    "pipelines, not PyTorch exports; featurize before the model",
}

#: What a user can do about an op in :data:`UNSUPPORTED`.
ROUTES = (
    "An op listed here can still be converted two ways: register your own composite (a sequence "
    "of MIL ops) with `@register_composite` in a file passed with `--extensions`, or, with "
    "`--backend neuralnetwork --custom-layers OP`, make the node a Core ML custom layer whose "
    "Swift/Metal body you write (see \"Adding an op\")."
)


def reason(op_type: str, domain: str = "") -> str | None:
    """Why default-domain ``op_type`` has no lowering, or None when it is not listed."""
    if domain not in ("", "ai.onnx"):
        return None
    return UNSUPPORTED.get(op_type)


def markdown() -> str:
    """The README section "## Unsupported ONNX ops": a table op -> reason, then the routes."""
    lines = [
        "## Unsupported ONNX ops",
        "",
        (
            "Every other default-domain op of ONNX opsets 7 to 28 lowers to MIL "
            "(`python -m pipeline.lower --list-ops` prints how).  These do not:"
        ),
        "",
        "| ONNX op | why |",
        "| --- | --- |",
    ]
    lines += [f"| {op} | {why} |" for op, why in sorted(UNSUPPORTED.items())]
    lines += ["", ROUTES, ""]
    return "\n".join(lines)
