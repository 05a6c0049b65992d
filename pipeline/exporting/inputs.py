"""Input specifications: ``--input NAME:SHAPE:DTYPE``, ``--dynamic NAME:AXIS=DIM``, ``--inputs-npz``.

An input spec names one positional input of the model's ``forward``; SHAPE is ``1x3x224x224``
(``scalar`` or empty for a 0-d tensor) and DTYPE a torch dtype name (default float32).  Example
tensors are drawn from a seeded generator: floats standard normal, integers in [0, 10), bools
uniform, so that exports and parity runs are deterministic.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from pipeline.errors import InputSpecError

log = logging.getLogger(__name__)

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "float": torch.float32, "fp32": torch.float32,
    "float16": torch.float16, "half": torch.float16, "fp16": torch.float16,
    "float64": torch.float64, "double": torch.float64,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64, "long": torch.int64, "int32": torch.int32, "int": torch.int32,
    "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool,
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
SEED = 0


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One model input: name, static example shape, dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32

    def example(self, generator: torch.Generator) -> torch.Tensor:
        """A seeded example tensor of this shape and dtype."""
        if self.dtype.is_floating_point:
            return torch.randn(self.shape, generator=generator).to(self.dtype)
        if self.dtype == torch.bool:
            return torch.randint(0, 2, self.shape, generator=generator).bool()
        return torch.randint(0, 10, self.shape, generator=generator, dtype=self.dtype)


def parse_input(text: str) -> InputSpec:
    """Parse ``NAME:SHAPE[:DTYPE]`` (``x:1x3x224x224:float32``)."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise InputSpecError(
            f"--input {text!r}: expected NAME:SHAPE[:DTYPE], e.g. x:1x3x224x224:float32"
        )
    name, shape_text = parts[0].strip(), parts[1].strip()
    if not _NAME.match(name):
        raise InputSpecError(f"--input {text!r}: {name!r} is not a valid input name")
    shape: tuple[int, ...] = ()
    if shape_text not in ("", "scalar"):
        try:
            shape = tuple(int(d) for d in shape_text.lower().split("x"))
        except ValueError:
            raise InputSpecError(
                f"--input {text!r}: shape {shape_text!r} must be integers joined by 'x', e.g. "
                "1x3x224x224 (name dynamic axes with --dynamic)"
            ) from None
        if any(d < 0 for d in shape):
            raise InputSpecError(f"--input {text!r}: dimensions must be >= 0")
    dtype_name = parts[2].strip().lower() if len(parts) == 3 else "float32"
    if dtype_name not in DTYPES:
        raise InputSpecError(
            f"--input {text!r}: unknown dtype {dtype_name!r}; use one of "
            + ", ".join(sorted({k for k in DTYPES if not k.startswith(("fp", "half", "long"))}))
        )
    return InputSpec(name, shape, DTYPES[dtype_name])


def parse_dynamic(texts: Sequence[str]) -> dict[str, dict[int, str]]:
    """Parse ``NAME:AXIS=DIM[,AXIS=DIM]`` items into ``{input: {axis: dim_param}}``."""
    out: dict[str, dict[int, str]] = {}
    for text in texts:
        name, sep, rest = text.partition(":")
        if not sep or not rest or not _NAME.match(name.strip()):
            raise InputSpecError(f"--dynamic {text!r}: expected NAME:AXIS=DIMNAME, e.g. x:0=batch")
        axes = out.setdefault(name.strip(), {})
        for item in rest.split(","):
            axis_text, eq, dim = item.partition("=")
            try:
                axis = int(axis_text)
            except ValueError:
                axis = -1
            if not eq or axis < 0 or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", dim.strip()):
                raise InputSpecError(
                    f"--dynamic {text!r}: {item!r} must be AXIS=DIMNAME with AXIS >= 0 and an "
                    "identifier as DIMNAME, e.g. 0=batch"
                )
            axes[axis] = dim.strip()
    return out


def check_dynamic(dynamic: Mapping[str, Mapping[int, str]], names: Sequence[str],
                  examples: Sequence[torch.Tensor]) -> None:
    """Every dynamic input exists and every axis is within its example's rank."""
    for name, axes in dynamic.items():
        if name not in names:
            raise InputSpecError(
                f"--dynamic {name}: no input called {name!r}; inputs are {', '.join(names)}"
            )
        rank = examples[list(names).index(name)].dim()
        for axis in axes:
            if axis >= rank:
                raise InputSpecError(
                    f"--dynamic {name}:{axis}: axis out of range for a rank-{rank} input"
                )


def make_examples(specs: Sequence[InputSpec], seed: int = SEED) -> tuple[torch.Tensor, ...]:
    """Seeded example tensors for the given specs."""
    gen = torch.Generator().manual_seed(seed)
    return tuple(spec.example(gen) for spec in specs)


def forward_names(model: object, count: int) -> list[str]:
    """Names of the first ``count`` positional parameters of ``model.forward`` (else input_i)."""
    names: list[str] = []
    target = getattr(model, "forward", None)
    try:
        params = list(inspect.signature(target).parameters.values()) if target else []
    except (TypeError, ValueError):
        params = []
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self":
            names.append(p.name)
    if len(names) < count or len(set(names[:count])) < count:
        return [f"input_{i}" for i in range(count)]
    return names[:count]


def load_npz(path: str | Path, names: Sequence[str] | None) -> dict[str, np.ndarray]:
    """Arrays of an ``.npz`` file keyed by input name; checks every named input is present."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except (OSError, ValueError) as exc:
        raise InputSpecError(
            f"--inputs-npz {path}: cannot read it as a .npz of arrays ({exc}); write one with "
            "numpy.savez(path, name=array, ...)"
        ) from None
    if names is not None:
        missing = [n for n in names if n not in arrays]
        if missing:
            raise InputSpecError(
                f"--inputs-npz {path}: missing input(s) {', '.join(missing)}; it holds "
                f"{', '.join(arrays) or 'nothing'}"
            )
        return {n: arrays[n] for n in names}
    return arrays


def tensors_from_npz(arrays: Mapping[str, np.ndarray], names: Sequence[str]) -> tuple[torch.Tensor, ...]:
    """The npz arrays in input order as tensors."""
    return tuple(torch.from_numpy(np.ascontiguousarray(arrays[n])) for n in names)


def check_against(examples: Sequence[torch.Tensor], npz: Sequence[torch.Tensor], names: Sequence[str],
                  dynamic: Mapping[str, Mapping[int, str]]) -> None:
    """Parity inputs must match the export examples in rank, dtype and every static dimension."""
    for name, ex, arr in zip(names, examples, npz, strict=True):
        dyn = dynamic.get(name, {})
        static_ok = ex.dim() == arr.dim() and all(
            a == b or i in dyn for i, (a, b) in enumerate(zip(ex.shape, arr.shape))
        )
        if ex.dtype != arr.dtype or not static_ok:
            raise InputSpecError(
                f"--inputs-npz: input {name!r} is {tuple(arr.shape)} {arr.dtype} but the model was "
                f"exported for {tuple(ex.shape)} {ex.dtype}; fix the npz or mark axes with --dynamic"
            )
