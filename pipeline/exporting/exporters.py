"""The two PyTorch exporters and the fallback between them.

* ``dynamo``: ``torch.onnx.export(..., dynamo=True)`` (torch.export + torchlib).  Default opset 18,
  the opset torchlib's functions are written in: a higher one is also accepted, a lower one makes
  torch run the ONNX version converter, which may fail.
* ``torchscript``: the legacy tracer, ``dynamo=False``.  Default opset 17, the newest opset most
  TorchScript symbolics were validated at.  It is run with ``verbose=True`` (stdout silenced),
  the only way it keeps each node's source stack in ``doc_string``.

The dynamo exporter runs under :func:`torchlib_cache.cached_registry`: torch's torchlib registry
(~2 s a call) is built once per process and opset, each export getting its own copy.

Both read the project's symbolics (``symbolics.translation_table`` / ``register_legacy``).  When
the dynamo exporter fails and fallback is allowed, the TorchScript exporter runs after a visible
warning and :class:`ExportOutcome` records which one produced the model and why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import onnx
import torch

from pipeline.errors import ExportError
from pipeline.exporting import local_decompose, optimize, torchlib_cache

log = logging.getLogger(__name__)

DYNAMO = "dynamo"
TORCHSCRIPT = "torchscript"
EXPORTERS = (DYNAMO, TORCHSCRIPT)
DEFAULT_OPSET = {DYNAMO: 18, TORCHSCRIPT: 17}
#: The legacy exporter has no symbolics above this opset (torch.onnx._constants).
TORCHSCRIPT_MAX_OPSET = 20
#: onnxscript's optimizer after the dynamo exporter: True (torch's call: two rounds of constant
#: folding and rewrite rules, then its fusions), "once" (:func:`optimize.optimize_once`: one
#: round with the rules that can match, then the fusions) or False.
#: Off, our rewrites and onnxsim do the same work slower and leave more nodes (bert 74 vs 70 final
#: nodes; Constant nodes the optimizer lifts to initializers stay in face_seg and log10_atan2).
#: The second round only repeats what our fold_constants pass and onnxsim do next: "once" gives
#: the same final graphs and MIL op counts (bert, hf_vit, wav2vec2, mobilenet_v2, resnet18,
#: convnext_tiny, lstm, face_seg) with 20-40% less optimizer time (issue 7).
DYNAMO_OPTIMIZE: bool | str = "once"


@dataclasses.dataclass
class ExportOutcome:
    """The exported model and how it was made."""

    model: onnx.ModelProto
    exporter: str
    opset: int
    seconds: float
    requested: str
    fallback_reason: str = ""
    symbolics: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)


@contextlib.contextmanager
def silenced_stdout() -> Iterator[None]:
    """Send stdout (Python's and file descriptor 1, where TorchScript's C++ log writes) to null."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real fd 1 (embedded interpreters): Python-level redirect only
        with contextlib.redirect_stdout(io.StringIO()):
            yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            with contextlib.redirect_stdout(io.StringIO()):
                yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def _mha_fastpath_disabled() -> Iterator[None]:
    """Trace attention layers through their regular ops: the fused inference fast path
    (``aten::_transformer_encoder_layer_fwd``, ``aten::_native_multi_head_attention``) has no
    TorchScript symbolic.  Same math; parity checks it."""
    mha = getattr(torch.backends, "mha", None)
    if mha is None:
        yield
        return
    before = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(before)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip(" #") for ln in _ANSI.sub("", str(exc)).splitlines() if ln.strip(" #")]
    return lines[0][:240] if lines else ""


def _short(exc: BaseException) -> str:
    """The first meaningful line of an exception (and of its cause), for a one-line error."""
    text = f"{type(exc).__name__}: {_first_line(exc)}"
    cause = exc.__cause__
    if cause is not None and _first_line(cause):
        text += f" (caused by {type(cause).__name__}: {_first_line(cause)})"
    return text


def _symbolics_module() -> Any | None:
    try:
        import symbolics
    except ImportError:
        return None
    return symbolics


def translation_table(opset: int, include: Sequence[str] = ()) -> dict[Any, Any]:
    """The project's dynamo symbolics for ``opset`` plus the opt-in ones named in ``include``."""
    mod = _symbolics_module()
    fn = getattr(mod, "translation_table", None)
    if fn is None:
        return {}
    return dict(fn(opset, include=list(include))) if include else dict(fn(opset))


def register_legacy(opset: int, include: Sequence[str] = ()) -> list[str]:
    """Register the project's TorchScript symbolics (and opt-in ``include``); returns their names."""
    mod = _symbolics_module()
    fn = getattr(mod, "register_legacy", None)
    if fn is None:
        return []
    return list(fn(opset, include=list(include))) if include else list(fn(opset))


def custom_domain() -> tuple[str, int] | None:
    """The symbolics' custom ONNX domain and version, if the package defines one."""
    mod = _symbolics_module()
    domain = getattr(mod, "CUSTOM_DOMAIN", None)
    if not domain:
        return None
    return str(domain), int(getattr(mod, "CUSTOM_DOMAIN_VERSION", 1))


def _attach_bodies(model: onnx.ModelProto) -> None:
    """Give onnxruntime the standard-op bodies of our custom-domain nodes (opt-in symbolics)."""
    mod = _symbolics_module()
    attach = getattr(mod, "attach_functions", None)
    custom = custom_domain()
    if attach is not None and custom is not None and any(n.domain == custom[0] for n in model.graph.node):
        attach(model)
    from pipeline.extensions import attach_bodies

    attach_bodies(model)  # user custom-domain ops declared with pipeline.extensions.register_body


def ensure_custom_domain(model: onnx.ModelProto) -> None:
    """Add the symbolics' domain to opset_import when nodes of that domain appear."""
    custom = custom_domain()
    if custom is None:
        return
    domain, version = custom
    if not any(n.domain == domain for n in model.graph.node):
        return
    # Set here rather than via the TorchScript exporter's custom_opsets, which warns on stderr
    # whenever the domain ends up unused.
    for entry in model.opset_import:
        if entry.domain == domain:
            entry.version = version
            return
    model.opset_import.append(onnx.helper.make_opsetid(domain, version))


def _run_dynamo(model: Any, args: tuple[torch.Tensor, ...], opset: int,
                input_names: Sequence[str], output_names: Sequence[str] | None,
                dynamic: Mapping[str, Mapping[int, str]], include: Sequence[str] = ()) -> tuple[onnx.ModelProto, list[str]]:
    table = translation_table(opset, include)
    dynamic_shapes = None
    if dynamic and not isinstance(model, torch.export.ExportedProgram):
        dynamic_shapes = tuple(dict(dynamic[n]) if n in dynamic else None for n in input_names)
    with torchlib_cache.cached_registry(), local_decompose.installed():
        program = torch.onnx.export(
            model, args, dynamo=True, verbose=False, opset_version=opset,
            input_names=list(input_names),
            output_names=list(output_names) if output_names else None,
            dynamic_shapes=dynamic_shapes, custom_translation_table=table or None,
            optimize=DYNAMO_OPTIMIZE is True,
        )
    if program is None:
        raise ExportError("export: the dynamo exporter returned no program")
    names = [getattr(op, "__name__", str(op)) for op in table]
    if DYNAMO_OPTIMIZE == "once":
        optimize.optimize_once(program.model)
    return program.model_proto, names


def _run_torchscript(model: Any, args: tuple[torch.Tensor, ...], opset: int,
                     input_names: Sequence[str], output_names: Sequence[str] | None,
                     dynamic: Mapping[str, Mapping[int, str]], include: Sequence[str] = ()) -> tuple[onnx.ModelProto, list[str]]:
    if isinstance(model, torch.export.ExportedProgram):
        model = model.module()
    registered = register_legacy(opset, include)
    buffer = io.BytesIO()
    with silenced_stdout(), _mha_fastpath_disabled():
        torch.onnx.export(
            model, args, buffer, dynamo=False,  # type: ignore[arg-type]  # accepts file objects
            verbose=True, opset_version=opset,
            input_names=list(input_names),
            output_names=list(output_names) if output_names else None,
            dynamic_axes={k: dict(v) for k, v in dynamic.items()} or None,
            do_constant_folding=True,
        )
    return onnx.load_from_string(buffer.getvalue()), registered


def export_model(
    model: Any,
    args: tuple[torch.Tensor, ...],
    *,
    exporter: str = DYNAMO,
    opset: int | None = None,
    input_names: Sequence[str],
    output_names: Sequence[str] | None = None,
    dynamic: Mapping[str, Mapping[int, str]] | None = None,
    fallback: bool = True,
    include: Sequence[str] = (),
) -> ExportOutcome:
    """Export ``model`` with ``exporter``; on a dynamo failure fall back to TorchScript.

    Raises:
        ExportError: the exporter (and the fallback, if tried) failed; the message names both.
    """
    if exporter not in EXPORTERS:
        raise ExportError(f"export: unknown exporter {exporter!r}; use one of {', '.join(EXPORTERS)}")
    dynamic = dynamic or {}
    runners = {DYNAMO: _run_dynamo, TORCHSCRIPT: _run_torchscript}
    order = [exporter] + ([TORCHSCRIPT] if exporter == DYNAMO and fallback else [])
    reasons: list[str] = []
    for name in order:
        this_opset = opset if opset is not None else DEFAULT_OPSET[name]
        if name == TORCHSCRIPT and opset is not None and opset > TORCHSCRIPT_MAX_OPSET:
            reasons.append(
                f"torchscript: opset {opset} is above its maximum {TORCHSCRIPT_MAX_OPSET}"
            )
            break
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught, torch.no_grad():
            warnings.simplefilter("always")
            try:
                proto, used = runners[name](model, args, this_opset, input_names, output_names, dynamic, include)
            except ExportError:
                raise
            except Exception as exc:  # exporters raise anything on untraceable code
                log.debug("%s exporter failed", name, exc_info=True)
                reasons.append(f"{name}: {_short(exc)}")
                if name == DYNAMO and len(order) > 1:
                    log.warning(
                        "the dynamo exporter failed (%s); falling back to the TorchScript exporter",
                        _short(exc),
                    )
                continue
        seconds = time.perf_counter() - start
        messages = sorted({str(w.message).splitlines()[0][:200] for w in caught})
        for msg in messages:
            log.debug("%s exporter warning: %s", name, msg)
        ensure_custom_domain(proto)
        _attach_bodies(proto)
        return ExportOutcome(
            proto, name, this_opset, seconds, exporter,
            fallback_reason=reasons[0] if reasons else "", symbolics=used, warnings=messages,
        )
    raise ExportError(
        "export: " + "; ".join(reasons)
        + ". Run with --debug for the traceback; try the other --exporter or simplify the model code"
    )
