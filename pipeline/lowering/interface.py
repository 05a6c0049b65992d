"""The model interface adapter between ONNX's inputs/outputs and what Core ML accepts.

Core ML rejects rank-0 (scalar) inputs, has no bool / int64 / int8 model inputs, and casts bool
outputs to float.  ONNX models use all of these, so the adapter:

* feeds a rank-0 input as shape ``(1,)`` and squeezes it inside the program;
* feeds integer and bool inputs as int32 (float64 as float32) and casts inside to the legal dtype;
* returns rank-0 outputs as ``(1,)``;
* records the ONNX type of every output so that :meth:`IOAdapter.restore_outputs` gives back
  exactly what onnxruntime would (bool, int64, shape ``()``);
* keeps every input and output name exactly where Core ML allows it.  Core ML wants feature
  names of the form ``[a-zA-Z][a-zA-Z0-9_]*`` (coremltools renames others); a name like
  ``input.1`` becomes ``input_1``, deterministically, and the mapping is recorded in the model's
  metadata and the report.  :meth:`adapt_feeds` and :meth:`restore_outputs` speak ONNX names.

The executor, the parity checks and the report all go through :meth:`adapt_feeds` and
:meth:`restore_outputs`, so a user sees ONNX-typed values on both sides.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types
from coremltools.converters.mil.mil.types.symbolic import is_symbolic

from pipeline.errors import LoweringError, UnsupportedTypeError
from pipeline.lowering import model_interface
from pipeline.lowering.dtypes import (
    legal_numpy,
    legalize_feed,
    mil_dtype_string,
    onnx_to_numpy,
)

#: Names MIL reserves (a feature named like this gets renamed by coremltools).
_RESERVED = {
    "any", "bool", "program", "func", "tensor", "list", "dict", "tuple", "true", "false",
    "string", "bf16", "fp16", "fp32", "fp64", "int8", "int16", "int32", "int64", "uint8",
    "uint16", "uint32", "uint64", "state",
}


def coreml_name(name: str, taken: set[str]) -> str:
    """``name`` as a valid Core ML feature name, unique among ``taken`` (which it joins)."""
    new = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not re.match(r"[A-Za-z]", new):
        new = "v" + (new if new.startswith("_") else "_" + new)
    if new in _RESERVED:
        new += "_"
    if new != name:
        stem, i = new, 0
        while new in taken:
            new, i = f"{stem}_{i}", i + 1
    taken.add(new)
    return new


#: Element types Core ML takes as model inputs directly (after legalization).
_FEEDABLE = {np.dtype(np.float32), np.dtype(np.float16), np.dtype(np.int32)}


@dataclasses.dataclass
class TensorSig:
    """One model input or output: its ONNX and its Core ML form."""

    name: str
    elem_type: int
    shape: tuple[Any, ...]  # ints, or str for symbolic dims
    coreml_shape: tuple[Any, ...] = ()
    coreml_dtype: str = "float32"
    coreml_name: str = ""
    ranges: dict[int, tuple[int, int]] = dataclasses.field(default_factory=dict)
    enumerated: list[tuple[int, ...]] = dataclasses.field(default_factory=list)
    image: Any = None  # model_interface.ImageInput / ImageOutput for image features
    fp16: bool = False  # output returned as float16 (--io-dtype fp16)

    @property
    def onnx_dtype(self) -> np.dtype:
        return onnx_to_numpy(self.elem_type)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "coreml_name": self.coreml_name,
            "onnx_dtype": str(self.onnx_dtype),
            "onnx_shape": list(self.shape),
            "coreml_dtype": self.coreml_dtype,
            "coreml_shape": [d if isinstance(d, int) else str(d) for d in self.coreml_shape],
        }


def _dims(value_info: onnx.ValueInfoProto) -> tuple[Any, ...]:
    dims: list[Any] = []
    for d in value_info.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or "?")
    return tuple(dims)


@dataclasses.dataclass
class IOAdapter:
    inputs: list[TensorSig]
    outputs: list[TensorSig]
    interface: Any = None  # model_interface.InterfaceOptions

    @classmethod
    def from_graph(cls, graph: onnx.GraphProto, options: Mapping[str, Any]) -> IOAdapter:
        init = {i.name for i in graph.initializer}
        shapes: Mapping[str, tuple[int, ...]] = options.get("shapes") or {}
        flexible: Mapping[str, Mapping[int, tuple[int, int]]] = options.get("flexible") or {}
        enumerated: Mapping[str, list[tuple[int, ...]]] = options.get("enumerated") or {}
        known = {vi.name for vi in graph.input if vi.name not in init}
        for name in [*flexible, *enumerated, *shapes]:
            if name not in known:
                raise LoweringError(f"lower: no model input named '{name}' (inputs: {sorted(known)})")
        sigs = []
        for vi in graph.input:
            if vi.name in init:
                continue
            if not vi.type.HasField("tensor_type"):
                raise UnsupportedTypeError(
                    f"lower: input '{vi.name}' is not a tensor: Core ML model inputs are tensors "
                    "(sequences, maps and optionals are supported only inside the graph)"
                )
            shape = tuple(shapes[vi.name]) if vi.name in shapes else _dims(vi)
            if 0 in shape:
                raise UnsupportedTypeError(
                    f"lower: input '{vi.name}' has shape {list(shape)}: Core ML has no empty tensors"
                )
            sig = TensorSig(vi.name, vi.type.tensor_type.elem_type, shape)
            ranges = {a % max(len(shape), 1): r for a, r in flexible.get(vi.name, {}).items()}
            sig.ranges = ranges
            if vi.name in enumerated:
                sig.enumerated = [tuple(e) for e in enumerated[vi.name]]
                if any(len(e) != len(shape) for e in sig.enumerated):
                    raise LoweringError(f"lower: enumerated shapes of '{vi.name}' must have rank {len(shape)}")
            varying = {a for a in range(len(shape)) if len({e[a] for e in sig.enumerated}) > 1}
            cshape: list[Any] = []
            for axis, d in enumerate(shape):
                if axis in ranges or axis in varying:
                    cshape.append(d if not isinstance(d, int) else f"{vi.name}_{axis}")
                elif isinstance(d, int):
                    cshape.append(d)
                elif sig.enumerated:
                    cshape.append(sig.enumerated[0][axis])
                else:
                    raise LoweringError(
                        f"lower: input '{vi.name}' axis {axis} is symbolic ('{d}'): declare its "
                        f"range with --flexible {vi.name}:{axis}=MIN..MAX, list its sizes with "
                        f"--enumerated {vi.name}:SHAPE,SHAPE, or fix it with "
                        f"--input-shape {vi.name}:" + "x".join(str(x) if isinstance(x, int) else "N" for x in shape)
                    )
            sig.coreml_shape = tuple(cshape) if cshape else (1,)
            legal = legal_numpy(sig.elem_type)
            sig.coreml_dtype = legal.name if legal in _FEEDABLE else "int32"
            sigs.append(sig)
        outs = [TensorSig(vi.name, vi.type.tensor_type.elem_type, _dims(vi)) for vi in graph.output]
        # Valid names are kept as they are; the others avoid every tensor name of the graph.
        taken = {v for n in graph.node for v in (*n.input, *n.output)} | {s.name for s in sigs + outs}
        for sig in sigs + outs:
            sig.coreml_name = coreml_name(sig.name, taken)
        interface = options.get("interface")
        model_interface.attach(sigs, outs, interface)
        return cls(sigs, outs, interface)

    # -- building ----------------------------------------------------------------------
    def placeholders(self) -> dict[str, Any]:
        from coremltools.converters.mil.mil.program import get_new_symbol

        phs = {}
        for sig in self.inputs:
            shape = [d if isinstance(d, int) else get_new_symbol() for d in sig.coreml_shape]
            dtype = types.numpy_type_to_builtin_type(np.dtype(sig.coreml_dtype).type)
            phs[sig.coreml_name] = mb.placeholder(shape=shape, dtype=dtype, name=sig.coreml_name)
        return phs

    def input_types(self) -> tuple[Any, ...]:
        """coremltools input types carrying RangeDim / EnumeratedShapes for flexible inputs."""
        import coremltools as ct

        types_ = []
        for sig in self.inputs:
            if sig.image is not None:
                types_.append(model_interface.image_input_type(sig))
                continue
            if not sig.ranges and not sig.enumerated:
                continue
            dtype = np.dtype(sig.coreml_dtype).type
            if sig.enumerated:
                shape: Any = ct.EnumeratedShapes(shapes=[list(e) for e in sig.enumerated], default=list(sig.enumerated[0]))
            else:
                dims = [
                    ct.RangeDim(lower_bound=sig.ranges[a][0], upper_bound=sig.ranges[a][1], default=sig.ranges[a][0])
                    if a in sig.ranges else d
                    for a, d in enumerate(sig.coreml_shape)
                ]
                shape = ct.Shape(dims)
            types_.append(ct.TensorType(name=sig.coreml_name, shape=shape, dtype=dtype))
        return tuple(types_)

    def bind_inputs(self, func_inputs: Mapping[str, Any]) -> dict[str, Any]:
        """ONNX input name -> the MIL value the graph's nodes see (squeezed / cast)."""
        bound = {}
        for sig in self.inputs:
            var = func_inputs[sig.coreml_name]
            if len(sig.shape) == 0:
                var = mb.squeeze(x=var, name=f"{sig.name}__scalar")
            if sig.image is not None:
                var = model_interface.preprocess(var, sig.image)
            legal = legal_numpy(sig.elem_type)
            if legal != np.dtype(sig.coreml_dtype):
                var = mb.cast(x=var, dtype=mil_dtype_string(legal), name=f"{sig.name}__cast")
            bound[sig.name] = var
        return bound

    def bind_outputs(self, ctx: Any, outputs: list[Any]) -> list[Any]:
        """The program's output values, named as the ONNX outputs (in their Core ML-valid form)."""
        result = []
        seen: set[int] = set()
        input_vars = {s.coreml_name for s in self.inputs}
        for sig, var in zip(self.outputs, outputs):
            if not hasattr(var, "rank"):
                raise UnsupportedTypeError(
                    f"lower: output '{sig.name}' is a sequence: Core ML model outputs are tensors; "
                    "end the graph with ConcatFromSequence (or output the elements separately)"
                )
            var = model_interface.postprocess(var, sig)
            rank0 = var.rank == 0
            own = var.op is not None and var.name not in input_vars and var.val is None and id(var) not in seen
            if own and not rank0:
                var.name = sig.coreml_name
            else:
                if var.name == sig.coreml_name:
                    var.name = f"{sig.coreml_name}__value"
                if rank0:
                    var = mb.expand_dims(x=var, axes=[0], name=sig.coreml_name)
                else:
                    var = mb.identity(x=var, name=sig.coreml_name)
            seen.add(id(var))
            sig.coreml_shape = tuple(d if not is_symbolic(d) else str(d) for d in var.shape)
            np_dtype = np.dtype(types.nptype_from_builtin(var.dtype))
            sig.coreml_dtype = "float32" if np_dtype == np.bool_ else np_dtype.name
            result.append(var)
        return result

    # -- feeding and reading back ---------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self.outputs]

    def adapt_feeds(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """ONNX-typed input arrays -> what the Core ML model takes."""
        out = {}
        for sig in self.inputs:
            if sig.name not in feeds:
                raise LoweringError(f"missing input '{sig.name}'")
            arr = np.asarray(feeds[sig.name])
            if arr.ndim == 0:
                arr = arr.reshape(1)
            arr = legalize_feed(arr, sig.elem_type)
            if sig.image is not None:
                arr = sig.image.to_pixels(arr)
            out[sig.coreml_name] = arr.astype(np.dtype(sig.coreml_dtype), copy=False)
        return out

    def restore_outputs(self, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Core ML output arrays -> ONNX-typed arrays (dtype and rank as ONNX declares)."""
        restored = {}
        if self.interface is not None and self.interface.classifier:
            outputs = model_interface.restore_classifier(outputs, self.interface, self)
        for sig in self.outputs:
            key = sig.coreml_name if sig.coreml_name in outputs else sig.name
            if key not in outputs:
                continue
            arr = np.asarray(outputs[key])
            if len(sig.shape) == 0 and arr.size == 1:
                arr = arr.reshape(())
            if sig.image is not None and sig.image.scale != 1.0:
                arr = arr.astype(np.float32) / np.float32(sig.image.scale)
            target = sig.onnx_dtype
            if arr.dtype != target:
                arr = arr.astype(target)
            restored[sig.name] = arr
        return restored

    def renamed(self) -> dict[str, str]:
        """ONNX name -> Core ML name, for the names Core ML made us change."""
        return {s.name: s.coreml_name for s in self.inputs + self.outputs if s.name != s.coreml_name}

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [s.to_dict() for s in self.inputs], "outputs": [s.to_dict() for s in self.outputs]}
