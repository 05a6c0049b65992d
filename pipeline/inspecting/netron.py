"""Netron (the netron package from PyPI) on localhost for our models and intermediates.

A conversion's intermediates folder holds one file per stage (see :data:`STAGES`): stage one
writes ``00_exported.onnx``, ``01_<k>_<pass>.onnx`` per rewrite pass that changed the graph,
``02_rewritten.onnx`` and ``03_simplified.onnx``; stage two writes ``04_lowered.mlpackage`` (or
``.mlmodel``) and the MIL text ``04_lowered.mil.txt``.
"""

from __future__ import annotations

import logging
import webbrowser
from pathlib import Path
from typing import Any

from pipeline.errors import InputSpecError, ModelLoadError, PipelineError

log = logging.getLogger(__name__)

#: ``--stage`` name -> file names in an intermediates folder, first existing wins.
STAGES: dict[str, tuple[str, ...]] = {
    "exported": ("00_exported.onnx",),
    "rewritten": ("02_rewritten.onnx",),
    "simplified": ("03_simplified.onnx",),
    "lowered": ("04_lowered.mlpackage", "04_lowered.mlmodel"),
}
SUFFIXES = (".onnx", ".mlpackage", ".mlmodel")
#: Netron listens here only: the models never leave the machine.
HOST = "127.0.0.1"


def available_stages(folder: Path) -> list[str]:
    """The stages present in an intermediates folder, in pipeline order."""
    return [s for s, names in STAGES.items() if any((folder / n).exists() for n in names)]


def resolve(path: str | Path, stage: str | None = None) -> Path:
    """The model file to open: ``path`` itself, or ``stage`` inside an intermediates folder.

    Raises:
        InputSpecError: an unknown stage, a stage without a folder, or a folder without a stage.
        ModelLoadError: the file or stage file does not exist, or is not a model Netron opens.
    """
    where = Path(path)
    if not where.exists():
        raise ModelLoadError(f"inspect: {where} does not exist; give an .onnx, .mlpackage or "
                             ".mlmodel file, or an intermediates folder with --stage")
    if stage is not None:
        if stage not in STAGES:
            raise InputSpecError(f"inspect: unknown --stage {stage!r}; choose {', '.join(STAGES)}")
        if not where.is_dir() or where.suffix == ".mlpackage":
            raise InputSpecError(f"inspect: --stage {stage} needs an intermediates folder "
                                 f"(--keep-intermediates DIR), not the file {where}")
        for name in STAGES[stage]:
            if (where / name).exists():
                return where / name
        have = available_stages(where)
        hint = (f"stages present: {', '.join(have)}" if have else
                "export with --keep-intermediates DIR (and lower with --keep-intermediates DIR "
                "for the lowered stage)")
        raise ModelLoadError(f"inspect: {where} has no {stage} stage ({' or '.join(STAGES[stage])}); {hint}")
    if where.is_dir() and where.suffix != ".mlpackage":
        have = available_stages(where)
        if not have:
            raise ModelLoadError(f"inspect: {where} is a folder without intermediates; give a model file")
        raise InputSpecError(f"inspect: {where} is an intermediates folder; pick one with --stage "
                             f"{'|'.join(have)}")
    if where.suffix not in SUFFIXES:
        raise ModelLoadError(f"inspect: {where.name} is not a model this command opens; give "
                             f"{', '.join(SUFFIXES)}")
    return where


def netron_file(model: Path) -> Path:
    """The file Netron is handed: an .mlpackage opens through its Manifest.json (Netron then
    fetches ``Data/com.apple.CoreML/model.mlmodel`` and the weights beside it)."""
    if model.suffix == ".mlpackage":
        manifest = model / "Manifest.json"
        if not manifest.exists():
            raise ModelLoadError(f"inspect: {model} has no Manifest.json; it is not a complete .mlpackage")
        return manifest
    return model


def _netron() -> Any:
    try:
        import netron
    except ImportError:
        raise PipelineError("inspect: the netron package is not installed; pip install netron "
                            "(or pip install 'onnx2coreml-pipeline[inspect]')") from None
    return netron


def serve(model: Path, port: int = 0, browse: bool = False) -> str:
    """Start Netron on ``model`` at ``127.0.0.1:port`` (0: any free port) in a background thread.

    Returns:
        the URL (``http://127.0.0.1:PORT``).

    Raises:
        PipelineError: netron is missing, or the port is taken.
    """
    netron = _netron()
    target = netron_file(model)
    try:
        host, bound = netron.start(str(target), address=(HOST, port), browse=False)
    except OSError as exc:
        raise PipelineError(f"inspect: cannot listen on {HOST}:{port} ({exc.strerror or exc}); "
                            "pass --port with a free port, or --port 0 for any") from None
    url = f"http://{host}:{bound}"
    log.info("Netron serves %s at %s", target, url)
    if browse:
        webbrowser.open(url)
    return url


def wait() -> None:
    """Block until every Netron server stopped; Ctrl-C stops them."""
    _netron().wait()


def stop(url: str | None = None) -> None:
    """Stop the Netron server at ``url`` (all of ours when None)."""
    netron = _netron()
    if url is None:
        netron.stop()
        return
    host, _, port = url.removeprefix("http://").partition(":")
    netron.stop((host, int(port)))
