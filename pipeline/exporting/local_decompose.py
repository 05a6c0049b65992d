"""Decompose only the nodes that need it, instead of re-tracing the whole captured program.

Before translating, the dynamo exporter calls ``ExportedProgram.run_decompositions`` with a
table of every aten op torchlib cannot translate.  That call re-traces the entire program under
fake tensors (``aot_export``): on a convolutional network it is the single most expensive step of
the export (resnet18 0.8 s, mobilenet_v2 1.6 s of a 1.9 s / 4.5 s export), although most of the
captured graph consists of ops torchlib translates as they are, and the re-trace leaves those
nodes unchanged.

:func:`decompose_locally` does the same job node by node when the captured graph allows it:

* in-place ops (``relu_``, ``add_``, ``hardtanh_``, ...) on a fresh intermediate become their
  out-of-place op, and later readers of the mutated tensor read the new node instead (what
  functionalization does in the simple, alias-free case);
* each remaining op torchlib does not translate is traced alone (``make_fx`` under the program's
  fake mode, with the exporter's decomposition table) and the small graph that comes out is
  spliced in its place, carrying the original node's source location and module stack;
* assertion nodes the exporter deletes afterwards anyway are left for it.

Anything else (higher-order ops, symbolic shapes, an in-place op on an input, a view or an
alias, a decomposition that yields constants or still-untranslatable ops) makes it return
``None`` without having touched the program; the stock whole-program decomposition then runs.
"""

from __future__ import annotations

import contextlib
import logging
import operator
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
import torch.fx
from torch.utils import _pytree

from pipeline.exporting import decompose_rules

log = logging.getLogger(__name__)

#: Nodes torch's exporter removes after decomposing (``_fx_passes.remove_assertion_nodes``).
_ASSERTIONS = frozenset({
    "aten::_assert_async", "aten::_assert_scalar", "aten::_assert_tensor_metadata",
    "aten::sym_constrain_range_for_size",
})


class _Fallback(Exception):
    """The graph needs the whole-program decomposition."""


def _is_overload(target: Any) -> bool:
    return isinstance(target, torch._ops.OpOverload)


def _returns_alias(target: Any) -> bool:
    """Whether an op's output may alias one of its inputs (views, in-place ops)."""
    if not _is_overload(target):
        return True
    return any(r.alias_info is not None for r in target._schema.returns)


def _mutates(target: torch._ops.OpOverload) -> bool:
    return any(a.alias_info is not None and a.alias_info.is_write for a in target._schema.arguments)


def _out_of_place(target: torch._ops.OpOverload) -> torch._ops.OpOverload | None:
    """``aten.relu_.default`` -> ``aten.relu.default``: the op's out-of-place twin, when only its
    first argument is written and the twin has the same arguments; None otherwise."""
    schema = target._schema
    base = schema.name.split("::", 1)[-1]
    if not base.endswith("_") or base.startswith("_") or not schema.arguments:
        return None
    written = [a for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write]
    if written != [schema.arguments[0]]:
        return None
    packet = getattr(torch.ops.aten, base[:-1], None)
    overload = getattr(packet, schema.overload_name or "default", None) if packet else None
    if overload is None or _returns_alias(overload) or _mutates(overload):
        return None
    twin = overload._schema.arguments
    if len(twin) != len(schema.arguments):
        return None
    for mine, theirs in zip(schema.arguments, twin):
        if str(mine.type) != str(theirs.type) or mine.kwarg_only != theirs.kwarg_only \
                or (mine.kwarg_only and mine.name != theirs.name):
            return None
    return overload


def _static(node: torch.fx.Node) -> bool:
    val = node.meta.get("val")
    values = val if isinstance(val, (list, tuple)) else [val]
    for v in values:
        if isinstance(v, torch.Tensor):
            if any(not isinstance(d, int) for d in v.shape):
                return False
        elif isinstance(v, torch.SymInt | torch.SymFloat | torch.SymBool):
            return False
    return True


def _functionalize(node: torch.fx.Node, functional: torch._ops.OpOverload, order: Mapping[torch.fx.Node, int],
                   fresh: set[torch.fx.Node]) -> Callable[[], None]:
    """Check that ``node`` (an in-place op) may become ``functional``; return the edit."""
    target_arg = node.args[0] if node.args else None
    if not isinstance(target_arg, torch.fx.Node) or target_arg not in fresh:
        raise _Fallback(f"{node.name}: mutates a tensor that may be aliased")
    later = []
    for user in target_arg.users:
        if user is node:
            continue
        if order[user] < order[node]:
            if user.op != "call_function" or _returns_alias(user.target):
                raise _Fallback(f"{node.name}: mutates a tensor viewed by {user.name}")
        else:
            later.append(user)

    def edit() -> None:
        node.target = functional
        for user in later:
            user.replace_input_with(target_arg, node)

    return edit


#: In-place dropouts: identities when not training (their ``train`` argument is third).
_DROPOUTS_IN_PLACE = frozenset({
    torch.ops.aten.dropout_.default, torch.ops.aten.feature_dropout_.default,
    torch.ops.aten.alpha_dropout_.default, torch.ops.aten.feature_alpha_dropout_.default,
})


def _training(node: torch.fx.Node) -> bool:
    train = node.args[2] if len(node.args) > 2 else node.kwargs.get("train", True)
    return train is not False


def _identity(node: torch.fx.Node) -> Callable[[], None]:
    """The edit replacing ``node`` by its first argument."""
    source = node.args[0]
    if not isinstance(source, torch.fx.Node):
        raise _Fallback(f"{node.name}: its input is not a node")

    def edit() -> None:
        node.replace_all_uses_with(source)
        node.graph.erase_node(node)

    return edit


def _trace_alone(node: torch.fx.Node, target: Any, table: Mapping[Any, Callable[..., Any]]) -> torch.fx.GraphModule:
    """``target`` applied to ``node``'s arguments, traced by itself with ``table`` applied (under
    the program's fake mode)."""
    from torch._guards import detect_fake_mode
    from torch.fx.experimental.proxy_tensor import make_fx

    flat, spec = _pytree.tree_flatten((node.args, node.kwargs))
    positions = [i for i, a in enumerate(flat) if isinstance(a, torch.fx.Node)]
    values = [flat[i].meta.get("val") for i in positions]
    if not all(isinstance(v, torch.Tensor) for v in values):
        raise _Fallback(f"{node.name}: an argument is not a tensor")

    def call(*tensors: torch.Tensor) -> Any:
        filled = list(flat)
        for i, t in zip(positions, tensors):
            filled[i] = t
        args, kwargs = _pytree.tree_unflatten(filled, spec)
        return target(*args, **kwargs)

    fake_mode = detect_fake_mode(values)
    if fake_mode is None:
        raise _Fallback(f"{node.name}: no fake tensors recorded")
    # Functionalized, as the whole-program decomposition is: a decomposition may mutate.
    with fake_mode, torch.no_grad():
        return make_fx(torch.func.functionalize(call, remove="mutations"),
                       decomposition_table=dict(table))(*values)


def _splice(graph: torch.fx.Graph, node: torch.fx.Node, sub: torch.fx.GraphModule) -> None:
    """Replace ``node`` by the ops of ``sub`` (its placeholders are ``node``'s tensor inputs)."""
    placeholders = [n for n in sub.graph.nodes if n.op == "placeholder"]
    env: dict[torch.fx.Node, Any] = dict(zip(placeholders, decompose_rules.node_inputs(node),
                                             strict=True))
    inherited: dict[str, Any] = {k: node.meta[k] for k in ("stack_trace", "nn_module_stack", "source_fn_stack",
                                           "from_node", "torch_fn") if k in node.meta}
    result: Any = None
    with graph.inserting_before(node):
        for sub_node in sub.graph.nodes:
            if sub_node.op == "placeholder":
                continue
            if sub_node.op == "output":
                result = _pytree.tree_map(lambda a: env[a] if isinstance(a, torch.fx.Node) else a,
                                          sub_node.args[0])
                continue
            copy = graph.node_copy(sub_node, lambda a: env[a])
            copy.meta.update(inherited)
            env[sub_node] = copy
    if isinstance(result, torch.fx.Node):
        node.replace_all_uses_with(result)
    else:
        for user in list(node.users):
            index = user.args[1]
            user.replace_all_uses_with(result[index])
            graph.erase_node(user)
    graph.erase_node(node)


def _restride_only(node: torch.fx.Node) -> bool:
    """An ``as_strided(_)`` that keeps its input's shape and the stride of every dimension
    longer than one: it changes the memory layout, never which element sits where."""
    if node.target not in (torch.ops.aten.as_strided_.default, torch.ops.aten.as_strided.default):
        return False
    source = node.args[0]
    val = source.meta.get("val") if isinstance(source, torch.fx.Node) else None
    if not isinstance(val, torch.Tensor) or len(node.args) < 3:
        return False
    size, stride = node.args[1], node.args[2]
    if not isinstance(size, (list, tuple)) or not isinstance(stride, (list, tuple)):
        return False
    size, stride = list(size), list(stride)
    offset = node.args[3] if len(node.args) > 3 else node.kwargs.get("storage_offset")
    if size != list(val.shape) or offset not in (None, val.storage_offset()):
        return False
    return all(n == 1 or s == t for n, s, t in zip(size, stride, val.stride()))


def _drop_restrides(sub: torch.fx.GraphModule) -> None:
    """Remove layout-only ``as_strided`` nodes (adaptive pooling restores channels-last this
    way); ONNX tensors have no strides."""
    for node in list(sub.graph.nodes):
        if node.op == "call_function" and _restride_only(node):
            node.replace_all_uses_with(node.args[0])
            sub.graph.erase_node(node)


def _check_sub(node: torch.fx.Node, sub: torch.fx.GraphModule, registered: set[Any]) -> None:
    for sub_node in sub.graph.nodes:
        if sub_node.op in ("placeholder", "output"):
            continue
        if sub_node.op != "call_function":
            raise _Fallback(f"{node.name}: its decomposition has a {sub_node.op} node")
        if sub_node.target not in registered and sub_node.target is not operator.getitem:
            raise _Fallback(f"{node.name}: decomposes into {sub_node.target}")
    output = next(n for n in sub.graph.nodes if n.op == "output")
    result = output.args[0]
    if not all(isinstance(r, torch.fx.Node) for r in _pytree.tree_leaves(result)):
        raise _Fallback(f"{node.name}: decomposes into a constant")
    if isinstance(result, (list, tuple)) and not all(
            u.op == "call_function" and u.target is operator.getitem for u in node.users):
        raise _Fallback(f"{node.name}: a multi-output op read other than by index")


def _plan(graph: torch.fx.Graph, registered: set[Any], table: Mapping[Any, Callable[..., Any]],
          ) -> tuple[list[Callable[[], None]], list[tuple[torch.fx.Node, torch.fx.GraphModule]]]:
    """The in-place edits and the traced decompositions, all checked; nothing changed yet."""
    nodes = list(graph.nodes)
    order = {n: i for i, n in enumerate(nodes)}
    fresh: set[torch.fx.Node] = set()
    edits: list[Callable[[], None]] = []
    subs: list[tuple[torch.fx.Node, torch.fx.GraphModule]] = []
    for node in nodes:
        if not _static(node):
            raise _Fallback(f"{node.name}: symbolic shape")
        if node.op in ("placeholder", "output", "get_attr"):
            continue
        target = node.target
        if node.op != "call_function" or not (_is_overload(target) or target is operator.getitem):
            raise _Fallback(f"{node.name}: {node.op} {target} is not an aten op")
        if target is operator.getitem or target.name() in _ASSERTIONS:
            continue
        if target in _DROPOUTS_IN_PLACE and not _training(node):
            edits.append(_identity(node))  # eval-mode dropout: neither mutates nor computes
            continue
        if _mutates(target):
            functional = _out_of_place(target)
            if functional is None:
                raise _Fallback(f"{node.name}: {target} mutates and has no out-of-place twin")
            edits.append(_functionalize(node, functional, order, fresh))
            target = functional
        if not _returns_alias(target):
            fresh.add(node)  # a new tensor nothing else aliases
        if target not in registered:
            sub = decompose_rules.build(node, target) or _trace_alone(node, target, table)
            _drop_restrides(sub)
            sub.graph.eliminate_dead_code()
            _check_sub(node, sub, registered)
            subs.append((node, sub))
    return edits, subs


def decompose_locally(program: Any, registered: set[Any],
                      table: Mapping[Any, Callable[..., Any]]) -> Any | None:
    """``program`` with every op outside ``registered`` decomposed in place, or None (untouched)
    when the graph needs the whole-program decomposition (see the module docstring).

    Args:
        program: the captured ``torch.export.ExportedProgram``.
        registered: the op overloads the exporter translates (torchlib plus custom entries).
        table: the exporter's decomposition table for the others.
    """
    graph_module = program.graph_module
    if any(isinstance(m, torch.fx.GraphModule) and m is not graph_module
           for m in graph_module.modules()):
        log.debug("whole-program decomposition: higher-order ops")
        return None
    graph = graph_module.graph
    replace_hook = getattr(graph_module, "_set_replace_hook", None)
    signature_hook = getattr(program.graph_signature, "get_replace_hook", None)
    if replace_hook is None or signature_hook is None:
        log.debug("whole-program decomposition: torch's program layout differs")
        return None
    try:
        edits, subs = _plan(graph, registered, table)
    except _Fallback as why:
        log.debug("whole-program decomposition: %s", why)
        return None
    # The program's signature names its outputs; replacing a node renames them there too.
    with replace_hook(signature_hook()):
        for edit in edits:
            edit()
        for node, sub in subs:
            _splice(graph, node, sub)
    graph.lint()
    graph_module.recompile()
    return program


class _LazyTable(Mapping[Any, Callable[..., Any]]):
    """The decomposition table, built on first use (~0.1 s; most graphs need none)."""

    def __init__(self, build: Callable[[], Mapping[Any, Callable[..., Any]]]) -> None:
        self._build = build
        self._table: Mapping[Any, Callable[..., Any]] | None = None

    def _get(self) -> Mapping[Any, Callable[..., Any]]:
        if self._table is None:
            self._table = self._build()
        return self._table

    def __getitem__(self, key: Any) -> Callable[..., Any]:
        return self._get()[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def _patched(stock: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """torch's ``decompose_with_registry`` trying :func:`decompose_locally` first."""
    from torch.onnx._internal.exporter import _decomp

    def decompose_with_registry(program: Any, registry: Any) -> Any:
        registered = set(_decomp.get_onnx_implemented_overloads(registry))
        table = _LazyTable(lambda: _decomp.create_onnx_friendly_decomposition_table(registered))
        local = decompose_locally(program, registered, table)
        return local if local is not None else stock(program, registry)

    decompose_with_registry._pipeline_stock = stock  # type: ignore[attr-defined]
    return decompose_with_registry


@contextlib.contextmanager
def installed() -> Iterator[bool]:
    """While active, the dynamo exporter decomposes locally when it can (see the module docstring).

    Yields:
        whether it is installed (False: torch's exporter has another layout; stock path).
    """
    try:
        from torch.onnx._internal.exporter import _fx_passes
    except ImportError:
        yield False
        return
    current = getattr(_fx_passes, "decompose_with_registry", None)
    if not callable(current):
        log.debug("torch's _fx_passes has another layout; whole-program decomposition")
        yield False
        return
    stock = getattr(current, "_pipeline_stock", current)
    _fx_passes.decompose_with_registry = _patched(stock)  # type: ignore[assignment]  # same call
    try:
        yield True
    finally:
        _fx_passes.decompose_with_registry = current
