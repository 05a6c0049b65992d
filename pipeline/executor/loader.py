"""Loading what :func:`pipeline.executor.execute` accepts into a MIL ``Program``.

Accepted: a coremltools MIL ``Program``; an ``MLModel`` of type ML Program (its in-memory
``_mil_program`` when present, else its spec and weights read back with coremltools' milproto
loader); a path to a saved ``.mlpackage``.  Neural-network ``.mlmodel`` files are refused.

The spec of a saved model also says which input shapes are allowed (``RangeDim`` ranges,
``EnumeratedShapes``); those are kept as :class:`InputConstraint` for the input checks.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from pipeline.errors import ExecutorError, ModelLoadError

log = logging.getLogger(__name__)


class ProgramLoadError(ModelLoadError, ExecutorError):
    """A model given to the executor could not be read as an ML Program."""


@dataclasses.dataclass
class InputConstraint:
    """Shapes an input accepts according to a model spec (beyond the MIL declared shape).

    ``ranges`` holds one ``(low, high)`` per dim (``high`` None when unbounded); ``shapes``
    the enumerated shapes.  Either may be empty.  ``default`` is the spec's default shape.
    """

    name: str
    ranges: list[tuple[int, int | None]] = dataclasses.field(default_factory=list)
    shapes: list[tuple[int, ...]] = dataclasses.field(default_factory=list)
    default: tuple[int, ...] = ()

    def check(self, shape: tuple[int, ...]) -> str | None:
        """Why ``shape`` is not allowed, or None when it is."""
        if self.shapes and tuple(shape) not in self.shapes:
            return f"shape {tuple(shape)} is not one of the enumerated shapes {self.shapes}"
        if self.ranges:
            if len(shape) != len(self.ranges):
                return f"rank {len(shape)} != {len(self.ranges)}"
            for axis, (size, (low, high)) in enumerate(zip(shape, self.ranges)):
                if size < low or (high is not None and size > high):
                    bound = f"[{low}, {'inf' if high is None else high}]"
                    return f"dim {axis} is {size}, outside the allowed range {bound}"
        return None


@dataclasses.dataclass
class LoadedModel:
    """A MIL program and what its source says about its inputs."""

    program: Any
    source: str
    constraints: dict[str, InputConstraint] = dataclasses.field(default_factory=dict)


def load(model: Any) -> LoadedModel:
    """Turn ``model`` (Program, MLModel or path) into a :class:`LoadedModel`.

    Raises:
        ProgramLoadError: the model is not an ML Program, or its file is missing or corrupt.
    """
    from coremltools.converters.mil.mil import Program

    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, Program):
        return LoadedModel(model, "MIL Program")
    if isinstance(model, (str, os.PathLike)):
        return _load_path(Path(model))
    if _is_mlmodel(model):
        return _load_mlmodel(model)
    raise ProgramLoadError(
        f"execute: cannot run a {type(model).__name__}; give a MIL Program, an ML Program "
        "MLModel, or the path of a saved .mlpackage"
    )


def _is_mlmodel(model: Any) -> bool:
    import coremltools as ct

    return isinstance(model, ct.models.MLModel)


def _load_mlmodel(model: Any) -> LoadedModel:
    spec = model.get_spec()
    _require_ml_program(spec, "MLModel")
    constraints = constraints_from_spec(spec)
    program = getattr(model, "_mil_program", None)
    if program is not None:
        return LoadedModel(program, "MLModel", constraints)
    weights = model.weights_dir or ""
    return LoadedModel(_program_from_spec(spec, weights, "MLModel"), "MLModel", constraints)


def _load_path(path: Path) -> LoadedModel:
    if not path.exists():
        raise ProgramLoadError(f"execute: model file {str(path)!r} does not exist")
    from coremltools.models.utils import _try_get_weights_dir_path, load_spec

    where = str(path)
    try:
        spec = load_spec(str(path))
    except Exception as exc:
        raise ProgramLoadError(
            f"execute: {where!r} is not a readable Core ML model ({type(exc).__name__}: {exc}); "
            "save it with MLModel.save()"
        ) from exc
    _require_ml_program(spec, where)
    weights = (_try_get_weights_dir_path(str(path)) if path.is_dir() else None) or ""
    program = _program_from_spec(spec, weights, where)
    return LoadedModel(program, where, constraints_from_spec(spec))


def _require_ml_program(spec: Any, where: str) -> None:
    kind = spec.WhichOneof("Type")
    if kind != "mlProgram":
        raise ProgramLoadError(
            f"execute: {where} is a Core ML {kind!r} model; only ML Programs run here "
            "(convert with convert_to='mlprogram')"
        )


def _program_from_spec(spec: Any, weights_dir: str, where: str) -> Any:
    from coremltools.converters.mil.frontend.milproto.load import load as milproto_load

    try:
        return milproto_load(spec, specification_version=spec.specificationVersion,
                             file_weights_dir=weights_dir)
    except Exception as exc:
        raise ProgramLoadError(
            f"execute: cannot read the ML Program of {where} ({type(exc).__name__}: {exc}); "
            "the package may be corrupt or its weights missing"
        ) from exc


def constraints_from_spec(spec: Any) -> dict[str, InputConstraint]:
    """The flexible-shape declarations (ranges, enumerated shapes) of a spec's array inputs."""
    found: dict[str, InputConstraint] = {}
    for feature in spec.description.input:
        if feature.type.WhichOneof("Type") != "multiArrayType":
            continue
        array = feature.type.multiArrayType
        flex = array.WhichOneof("ShapeFlexibility")
        default = tuple(int(d) for d in array.shape)
        if flex == "shapeRange":
            ranges = [
                (int(r.lowerBound), None if r.upperBound < 0 else int(r.upperBound))
                for r in array.shapeRange.sizeRanges
            ]
            found[feature.name] = InputConstraint(feature.name, ranges=ranges, default=default)
        elif flex == "enumeratedShapes":
            shapes = [tuple(int(d) for d in s.shape) for s in array.enumeratedShapes.shapes]
            found[feature.name] = InputConstraint(feature.name, shapes=shapes, default=default)
    return found
