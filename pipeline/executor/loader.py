"""Loading what :func:`pipeline.executor.execute` accepts into a MIL ``Program``.

Accepted: a coremltools MIL ``Program``; an ``MLModel`` of type ML Program (its in-memory
``_mil_program`` when present, else its spec and weights read back with coremltools' milproto
loader); a path to a saved ``.mlpackage``.  Neural-network ``.mlmodel`` files are refused.

The spec of a saved model also says which input shapes are allowed (``RangeDim`` ranges,
``EnumeratedShapes``); those are kept as :class:`InputConstraint` for the input checks.

Memory: coremltools' blob reader maps the whole ``weight.bin`` while a program loads, so the
file's pages count in the process' resident memory on top of the arrays read from it (about
twice the weights at peak).  We hand its milproto loader a reader that reads each blob with
plain file reads instead (format: 64-byte header; per blob a 64-byte record ``uint32 sentinel
0xDEADBEEF, uint32 dtype, uint64 size in bytes, uint64 data offset``); sub-byte types and any
coremltools without the hooks we use go through coremltools' own reader.  The milproto loader
also copies every weight twice before keeping it; glibc keeps such freed blocks in its heap,
so the reader hands free heap pages back (``malloc_trim``) every 16 MiB it reads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import functools
import logging
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

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
        program = _program_reading_blobs(spec, weights_dir)
        if program is not None:
            return program
        return milproto_load(spec, specification_version=spec.specificationVersion,
                             file_weights_dir=weights_dir)
    except Exception as exc:
        raise ProgramLoadError(
            f"execute: cannot read the ML Program of {where} ({type(exc).__name__}: {exc}); "
            "the package may be corrupt or its weights missing"
        ) from exc


def _program_reading_blobs(spec: Any, weights_dir: str) -> Any:
    """coremltools' milproto loader with our blob reader; None if its hooks are not there."""
    try:
        from coremltools.converters.mil.frontend.milproto import load as milproto
        from coremltools.converters.mil.mil import Program

        context = milproto.TranscriptionContext(weights_dir)
        readers = context.blob_reader_from_filename
        load_function = milproto._load_function
        load_attributes = milproto._load_program_spec_attributes
    except (ImportError, AttributeError, TypeError):
        return None
    if not isinstance(readers, dict) or not weights_dir:
        return None
    program_spec = spec.mlProgram
    if program_spec.docString or program_spec.version != 1:
        return None  # the public loader gives the precise error
    for name in os.listdir(weights_dir):
        path = os.path.join(weights_dir, name)
        if os.path.isfile(path):
            readers[path] = BlobFileReader(path)
    program = Program()
    for name, func_spec in program_spec.functions.items():
        program.add_function(name, load_function(context, func_spec, spec.specificationVersion))
    load_attributes(context, program_spec, program)
    release_free_heap()
    return program


@functools.cache
def _malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def release_free_heap() -> None:
    """Give the C heap's free pages back to the OS (glibc ``malloc_trim``; no-op elsewhere)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class BlobFileReader:
    """Reads blobs of a MIL weight file by offset into owned arrays (no file mapping)."""

    _SENTINEL = 0xDEADBEEF
    _RECORD = struct.Struct("<IIQQ")

    _TRIM_EVERY = 16 << 20

    def __init__(self, path: str) -> None:
        self.path = path
        self._fallback: Any = None
        self._since_trim = 0

    def _read(self, offset: int, dtype: type) -> np.ndarray:
        """The blob whose record is at ``offset``, as a 1-D array of ``dtype``."""
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            sentinel, _, size, data_offset = self._RECORD.unpack(handle.read(self._RECORD.size))
            if sentinel != self._SENTINEL:
                raise ProgramLoadError(
                    f"execute: weight file {self.path!r} has no blob record at offset {offset}; "
                    "the package is corrupt, save it again"
                )
            handle.seek(data_offset)
            itemsize = np.dtype(dtype).itemsize
            arr: np.ndarray = np.fromfile(handle, dtype=dtype, count=size // itemsize)
        self._since_trim += size
        if self._since_trim >= self._TRIM_EVERY:
            self._since_trim = 0
            release_free_heap()
        if arr.size * itemsize != size:
            raise ProgramLoadError(
                f"execute: weight file {self.path!r} is truncated (blob at offset {offset}); "
                "the package is corrupt, save it again"
            )
        return arr

    def read_float_data(self, offset: int) -> np.ndarray:
        return self._read(offset, np.float32)

    def read_fp16_data(self, offset: int) -> np.ndarray:
        return self._read(offset, np.uint16)  # coremltools' reader gives the raw fp16 bits

    def read_int8_data(self, offset: int) -> np.ndarray:
        return self._read(offset, np.int8)

    def read_uint8_data(self, offset: int) -> np.ndarray:
        return self._read(offset, np.uint8)

    def read_int16_data(self, offset: int) -> np.ndarray:
        return self._read(offset, np.int16)

    def read_uint16_data(self, offset: int) -> np.ndarray:
        return self._read(offset, np.uint16)

    def read_int32_data(self, offset: int) -> np.ndarray:
        return self._read(offset, np.int32)

    def read_uint32_data(self, offset: int) -> np.ndarray:
        return self._read(offset, np.uint32)

    def __getattr__(self, name: str) -> Any:
        # Sub-byte reads (uint1..uint6, int4) come packed in coremltools' own layout.
        if not name.startswith("read_"):
            raise AttributeError(name)
        if self._fallback is None:
            from coremltools.libmilstoragepython import _BlobStorageReader

            self._fallback = _BlobStorageReader(self.path)
        return getattr(self._fallback, name)


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
