"""Model sources: what ``python -m pipeline.export SOURCE`` accepts.

* ``module:factory`` (or ``path/to/file.py:factory``): a callable returning an ``nn.Module`` or
  ``(module, example_inputs)``;
* ``torchvision:NAME``: a torchvision model with random (seeded) weights, never downloaded;
* a TorchScript archive (``.pt``, ``.pth``, ``.ts``, ``.torchscript``, ``.jit``);
* a ``torch.export`` archive (``.pt2``);
* a checkpoint (``.pt``, ``.pth``, ``.ckpt``, ``.bin``) together with ``factory="module:callable"``;
  always read with ``torch.load(weights_only=True)``, never unpickling arbitrary objects.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from pipeline.errors import ModelLoadError

log = logging.getLogger(__name__)

TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript", ".jit")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
#: Default example input of torchvision classification models.
TORCHVISION_INPUT = (1, 3, 224, 224)


@dataclasses.dataclass
class LoadedModel:
    """A loaded model, the example inputs that came with it (if any) and where it came from."""

    module: Any  # nn.Module, ScriptModule or torch.export.ExportedProgram
    example_inputs: tuple[torch.Tensor, ...] | None
    kind: str  # factory, torchvision, torchscript, exported_program, checkpoint
    spec: str

    def callable_module(self) -> Any:
        """Something that computes the model in PyTorch (``ExportedProgram.module()`` if needed)."""
        if isinstance(self.module, torch.export.ExportedProgram):
            return self.module.module()
        return self.module


def load(spec: str, *, factory: str | None = None) -> LoadedModel:
    """Load a model from a source spec (see the module docstring).

    Raises:
        ModelLoadError: the spec is unknown, a file is missing or corrupt, or a factory fails.
    """
    path = Path(spec)
    if factory is not None:
        return _load_checkpoint(path, factory)
    if spec.startswith("torchvision:"):
        return _load_torchvision(spec.split(":", 1)[1], spec)
    suffix = path.suffix.lower()
    if suffix == ".pt2":
        return _load_exported_program(path)
    if suffix in TORCHSCRIPT_SUFFIXES or (path.exists() and ":" not in spec):
        return _load_torchscript(path)
    if ":" in spec:
        module, attr = _resolve_callable(spec)
        return _call_factory(module, attr, spec)
    raise ModelLoadError(
        f"model source {spec!r}: not a file and not module:factory; use e.g. models.small_cnn:build, "
        "torchvision:resnet18, model.pt2, scripted.pt or weights.pth --factory module:callable"
    )


def _resolve_callable(spec: str) -> tuple[Any, str]:
    """Import ``module:attr`` (or ``file.py:attr``) and return (callable, spec)."""
    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise ModelLoadError(f"model source {spec!r}: expected module:callable")
    try:
        if module_name.endswith(".py"):
            file = Path(module_name)
            if not file.is_file():
                raise ModelLoadError(f"model source {spec!r}: file {module_name} does not exist")
            mod_spec = importlib.util.spec_from_file_location(file.stem, file)
            if mod_spec is None or mod_spec.loader is None:
                raise ModelLoadError(f"model source {spec!r}: cannot import {module_name}")
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)
        else:
            # Like `python -m`, let modules of the current directory be found.
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(module_name)
    except ModelLoadError:
        raise
    except ImportError as exc:
        raise ModelLoadError(
            f"model source {spec!r}: cannot import {module_name!r} ({exc}); check the module path "
            "and that it is importable from the current directory"
        ) from exc
    except Exception as exc:  # user module code may raise anything on import
        raise ModelLoadError(
            f"model source {spec!r}: importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    target = getattr(module, attr, None)
    if target is None or not callable(target):
        raise ModelLoadError(f"model source {spec!r}: {module_name} has no callable {attr!r}")
    return target, spec


def _call_factory(target: Any, attr: str, spec: str) -> LoadedModel:
    """Call a factory and normalise its result to (module, examples)."""
    torch.manual_seed(0)
    try:
        result = target()
    except Exception as exc:  # user factory code may raise anything
        raise ModelLoadError(
            f"model source {spec!r}: the factory raised {type(exc).__name__}: {exc}"
        ) from exc
    module, examples = _split_factory_result(result, spec)
    return LoadedModel(_eval(module), examples, "factory", spec)


def _split_factory_result(result: Any, spec: str) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...] | None]:
    if isinstance(result, (torch.nn.Module, torch.jit.ScriptModule)):
        return result, None
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], torch.nn.Module):
        inputs = result[1]
        if isinstance(inputs, torch.Tensor):
            inputs = (inputs,)
        if isinstance(inputs, list):
            inputs = tuple(inputs)
        if isinstance(inputs, tuple) and all(isinstance(t, torch.Tensor) for t in inputs):
            return result[0], inputs
    raise ModelLoadError(
        f"model source {spec!r}: the factory returned {type(result).__name__}; it must return an "
        "nn.Module or (nn.Module, tuple of example tensors)"
    )


def _eval(module: Any) -> Any:
    if isinstance(module, torch.nn.Module):
        module.eval()
    return module


def _load_torchvision(name: str, spec: str) -> LoadedModel:
    try:
        import torchvision
    except ImportError as exc:
        raise ModelLoadError(f"model source {spec!r}: torchvision is not installed") from exc
    torch.manual_seed(0)
    try:
        module = torchvision.models.get_model(name, weights=None)
    except (ValueError, KeyError) as exc:
        raise ModelLoadError(
            f"model source {spec!r}: torchvision has no model {name!r}; see "
            "torchvision.models.list_models()"
        ) from exc
    examples = (torch.randn(TORCHVISION_INPUT, generator=torch.Generator().manual_seed(0)),)
    return LoadedModel(_eval(module), examples, "torchvision", spec)


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise ModelLoadError(f"{what} {path}: file does not exist")


def _load_exported_program(path: Path) -> LoadedModel:
    _require_file(path, "torch.export archive")
    try:
        program = torch.export.load(str(path))
    except Exception as exc:  # a corrupt archive fails in many ways
        raise ModelLoadError(
            f"torch.export archive {path}: cannot load it ({type(exc).__name__}: {exc}); "
            "write it with torch.export.save"
        ) from exc
    examples = None
    args = getattr(program, "example_inputs", None)
    if args and isinstance(args[0], tuple) and all(isinstance(t, torch.Tensor) for t in args[0]):
        examples = tuple(args[0])
    return LoadedModel(program, examples, "exported_program", str(path))


def _load_torchscript(path: Path) -> LoadedModel:
    _require_file(path, "TorchScript archive")
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # a corrupt archive fails in many ways
        raise ModelLoadError(
            f"TorchScript archive {path}: cannot load it ({type(exc).__name__}); if it is a "
            "checkpoint (state dict), pass --factory module:callable to build the module"
        ) from exc
    return LoadedModel(_eval(module), None, "torchscript", str(path))


def _load_checkpoint(path: Path, factory: str) -> LoadedModel:
    _require_file(path, "checkpoint")
    target, _ = _resolve_callable(factory)
    built = _call_factory(target, factory.rpartition(":")[2], factory)
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or pickled-object files raise many types
        raise ModelLoadError(
            f"checkpoint {path}: cannot load it with torch.load(weights_only=True) "
            f"({type(exc).__name__}); it must hold a state dict of tensors"
        ) from exc
    state = _state_dict_of(state, path)
    try:
        built.module.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as exc:
        first = str(exc).strip().splitlines()
        raise ModelLoadError(
            f"checkpoint {path}: does not fit the module built by {factory} "
            f"({first[1].strip() if len(first) > 1 else first[0] if first else exc})"
        ) from exc
    return LoadedModel(_eval(built.module), built.example_inputs, "checkpoint", str(path))


def _state_dict_of(obj: Any, path: Path) -> Mapping[str, torch.Tensor]:
    """The state dict in a checkpoint: the object itself or under a usual key."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise ModelLoadError(
        f"checkpoint {path}: holds no state dict of tensors (top level: {type(obj).__name__}); "
        "save one with torch.save(model.state_dict(), path)"
    )
