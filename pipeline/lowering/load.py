"""Loading and checking the ONNX model stage two receives."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from onnx import external_data_helper

from pipeline.errors import ModelLoadError, ValidationError

#: Newest default-domain opset the lowering handles.
MAX_DEFAULT_OPSET = 28


def _check_external_data(model: onnx.ModelProto, base: Path) -> None:
    """Refuse external data whose location leaves the model's folder."""
    root = base.resolve()
    for tensor in external_data_helper._get_all_tensors(model):
        if not external_data_helper.uses_external_data(tensor):
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        target = (root / location).resolve()
        if os.path.isabs(location) or root not in target.parents:
            raise ModelLoadError(
                f"lower: tensor '{tensor.name}' points its external data at '{location}', "
                "outside the model's folder; move the data next to the .onnx file"
            )
        if not target.exists():
            raise ModelLoadError(f"lower: external data file '{location}' of tensor '{tensor.name}' is missing")


def _superseded_schema(node: onnx.NodeProto, opsets: dict[str, int]) -> onnx.defs.OpSchema | None:
    """The node's schema when it is deprecated only because a later opset replaced it.

    onnx marks an op version deprecated once a newer version supersedes it (GroupNormalization-18
    since opset 21), and its checker then rejects the op even at opsets 18-20, where the spec
    still defines it.  Versions deprecated at their own opset (Upsample-10, Scatter-11) are not
    returned: the spec removed those ops.
    """
    domain = "" if node.domain == "ai.onnx" else node.domain
    if domain not in opsets:
        return None
    try:
        schema = onnx.defs.get_schema(node.op_type, opsets[domain], domain)
        newest = onnx.defs.get_schema(node.op_type, domain=domain)
    except onnx.defs.SchemaError:
        return None
    return schema if schema.deprecated and newest.since_version > schema.since_version else None


#: The schema's attribute type enum, whose members are named like AttributeProto's types.
_ATTR_TYPES = onnx.defs.OpSchema.AttrType


def _verify_superseded(node: onnx.NodeProto, schema: onnx.defs.OpSchema) -> None:
    """What the checker verifies of a node against its schema: arity and attributes."""
    where = f"node '{node.name or node.op_type}' ({node.op_type}-{schema.since_version})"
    n_in = len(node.input)
    while n_in and not node.input[n_in - 1]:
        n_in -= 1  # trailing omitted optional inputs
    if not schema.min_input <= n_in <= schema.max_input or not schema.min_output <= len(node.output) <= schema.max_output:
        raise ValidationError(f"lower: the ONNX checker rejects the model: {where} has {n_in} inputs and "
                              f"{len(node.output)} outputs, outside the schema's arity; fix the model")
    given = {a.name: a for a in node.attribute}
    for name, attr in given.items():
        spec = schema.attributes.get(name)
        if spec is None or (not attr.ref_attr_name and spec.type != getattr(_ATTR_TYPES, onnx.AttributeProto.AttributeType.Name(attr.type))):
            raise ValidationError(f"lower: the ONNX checker rejects the model: {where} has unknown or "
                                  f"mistyped attribute '{name}'; fix the model")
    missing = [n for n, spec in schema.attributes.items() if spec.required and n not in given]
    if missing:
        raise ValidationError(f"lower: the ONNX checker rejects the model: {where} lacks required "
                              f"attribute(s) {missing}; fix the model")


def _superseded_nodes(graph: onnx.GraphProto, opsets: dict[str, int]) -> list[onnx.NodeProto]:
    """Verified superseded-schema nodes of ``graph`` and its subgraphs."""
    found = []
    for node in graph.node:
        for attr in node.attribute:
            for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs:
                found += _superseded_nodes(sub, opsets)
        schema = _superseded_schema(node, opsets)
        if schema is not None:
            _verify_superseded(node, schema)
            found.append(node)
    return found


#: Ops whose shape inference reads an omitted attribute with another default than the schema's
#: (onnx 1.23: STFT reads onesided as 0, the schema says 1, and rejects a correct output shape).
_DEFAULT_BLIND_INFERENCE = {"STFT"}


def _fill_function_defaults(graph: onnx.GraphProto, opsets: dict[str, int]) -> list[tuple[onnx.NodeProto, int]]:
    """Spell out omitted defaulted attributes of function ops (``graph`` and its subgraphs).

    onnx's checker infers a function op's shapes through its body, where an omitted attribute
    leaves a ``Constant <value_ints = @axes>`` empty and fails (MeanVarianceNormalization without
    axes); the spec says an omitted attribute takes its default, so writing it out is the same
    model.  Ops in ``_DEFAULT_BLIND_INFERENCE`` get the same treatment.  Returns (node, number of
    attributes appended) for :func:`_check` to undo.
    """
    filled = []
    for node in graph.node:
        for attr in node.attribute:
            for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs:
                filled += _fill_function_defaults(sub, opsets)
        domain = "" if node.domain == "ai.onnx" else node.domain
        if domain != "" or domain not in opsets:
            continue
        try:
            schema = onnx.defs.get_schema(node.op_type, opsets[domain], domain)
        except onnx.defs.SchemaError:
            continue
        function = getattr(schema, "has_function", False) or getattr(schema, "has_context_dependent_function", False)
        if not function and node.op_type not in _DEFAULT_BLIND_INFERENCE:
            continue
        given = {a.name for a in node.attribute}
        added = [spec.default_value for name, spec in schema.attributes.items()
                 if name not in given and spec.default_value.name]
        if added:
            node.attribute.extend(added)
            filled.append((node, len(added)))
    return filled


#: Domain superseded-schema nodes take while the checker runs (it has no schemas there).
_VERIFIED_DOMAIN = "pipeline.verified"


def _check(proto: onnx.ModelProto) -> None:
    """Run onnx's full checker, accepting op versions the spec defines at the model's opset.

    Omitted defaulted attributes of function ops are spelled out while it runs (see
    :func:`_fill_function_defaults`), and removed again afterwards.

    Nodes whose schema onnx marks deprecated because a later opset superseded it are verified here
    (arity, attributes) and by shape inference with type checks; while the checker runs on the
    rest of the model they sit in a private domain (restored afterwards, so nothing is copied).
    """
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in proto.opset_import}
    nodes = _superseded_nodes(proto.graph, opsets)
    domains = [n.domain if n.HasField("domain") else None for n in nodes]
    filled = _fill_function_defaults(proto.graph, opsets)
    try:
        if nodes:
            onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
            proto.opset_import.append(onnx.helper.make_opsetid(_VERIFIED_DOMAIN, 1))
            for node in nodes:
                node.domain = _VERIFIED_DOMAIN
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # noqa: BLE001 - the checker's C++ layer raises several types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValidationError(f"lower: the ONNX checker rejects the model: {first}") from None
    finally:
        for node, count in filled:
            del node.attribute[len(node.attribute) - count :]
        if nodes:
            for node, domain in zip(nodes, domains):
                if domain is None:
                    node.ClearField("domain")
                else:
                    node.domain = domain
            if proto.opset_import[-1].domain == _VERIFIED_DOMAIN:
                del proto.opset_import[-1]


def load_onnx(model: onnx.ModelProto | str | os.PathLike[str], *,
              prechecked: bool = False) -> onnx.ModelProto:
    """Load (if a path), check with the full checker, and shape-infer an ONNX model.

    ``prechecked`` skips both, for a model stage one has just checked and shape-inferred with
    data propagation (``convert``).
    """
    if isinstance(model, onnx.ModelProto):
        proto = model
    else:
        path = Path(model)
        if not path.is_file():
            raise ModelLoadError(f"lower: no such ONNX file: {path}")
        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends: bad input
            raise ModelLoadError(f"lower: {path} is not a readable ONNX model ({type(exc).__name__}: {str(exc)[:120]})") from None
        if not proto.graph.node and not proto.graph.output:
            raise ModelLoadError(f"lower: {path} holds no graph (empty or truncated file?)")
        _check_external_data(proto, path.parent)
        try:
            external_data_helper.load_external_data_for_model(proto, str(path.parent))
        except Exception as exc:  # noqa: BLE001 - unreadable data files are bad input
            raise ModelLoadError(f"lower: could not read external data of {path}: {exc}") from None
    default = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if default is not None and default > MAX_DEFAULT_OPSET:
        raise ValidationError(
            f"lower: the model uses opset {default}; the newest supported is {MAX_DEFAULT_OPSET}. "
            "Re-export with a lower --opset"
        )
    if prechecked:
        return proto
    _check(proto)
    try:
        proto = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - onnx raises several classes here
        raise ValidationError(f"lower: ONNX shape inference failed: {str(exc).splitlines()[0]}") from None
    return proto
