"""Hand-built decompositions of the ops convolutional networks need most, without tracing.

:mod:`local_decompose` traces each op torchlib does not translate (``make_fx``, ~10-25 ms a node);
a ResNet or MobileNet has dozens of eval-mode ``batch_norm`` nodes and a global average pool.
For those, the graph the trace would produce is built here directly, each new node's ``val``
computed by running its op on the fake tensors of its inputs:

* ``batch_norm(x, w, b, mean, var, training=False, momentum, eps, cudnn)`` ->
  ``native_batch_norm(x, w, b, mean, var, False, momentum, eps)[0]``;
* ``adaptive_avg_pool2d(x, [1, 1])`` -> ``mean.dim(x, [-1, -2], keepdim=True)``.

Any other form returns None, and the op is traced as before.  Tests compare each rule with the
traced decomposition.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.fx
from torch.utils import _pytree

aten = torch.ops.aten

Arg = Callable[[Any], Any]


def _run_fake(target: Any, args: tuple[Any, ...], fake_mode: Any) -> Any:
    values = _pytree.tree_map(lambda a: a.meta["val"] if isinstance(a, torch.fx.Node) else a, args)
    if target is operator.getitem:
        return values[0][values[1]]
    with fake_mode, torch.no_grad():
        return target(*values)


def node_inputs(node: torch.fx.Node) -> list[torch.fx.Node]:
    """``node``'s node arguments in order, one per position (a node passed twice is listed twice):
    a decomposition graph has one placeholder for each, and splicing maps them back this way."""
    return [a for a in _pytree.tree_leaves((node.args, node.kwargs)) if isinstance(a, torch.fx.Node)]


def _graph(node: torch.fx.Node,
           body: Callable[[Callable[..., torch.fx.Node], Arg], Any]) -> torch.fx.GraphModule | None:
    """A graph with one placeholder per :func:`node_inputs` entry, whose ops ``body(call, arg)``
    adds; None when fake values are missing."""
    from torch._guards import detect_fake_mode

    leaves = node_inputs(node)
    values = [leaf.meta.get("val") for leaf in leaves]
    if not all(isinstance(v, torch.Tensor) for v in values):
        return None
    fake_mode = detect_fake_mode(values)
    if fake_mode is None:
        return None
    graph = torch.fx.Graph()
    inputs: dict[torch.fx.Node, torch.fx.Node] = {}
    for position, (leaf, value) in enumerate(zip(leaves, values)):
        placeholder = graph.placeholder(f"{leaf.name}_{position}")
        placeholder.meta["val"] = value
        inputs.setdefault(leaf, placeholder)  # a repeated input reads its first placeholder

    def arg(value: Any) -> Any:
        return inputs[value] if isinstance(value, torch.fx.Node) else value

    def call(target: Any, *args: Any) -> torch.fx.Node:
        name = getattr(target, "__name__", "op").split(".")[0]  # as a trace names it
        new = graph.create_node("call_function", target, args, name=name)
        new.meta["val"] = _run_fake(target, args, fake_mode)
        return new

    graph.output(body(call, arg))
    return torch.fx.GraphModule(torch.nn.Module(), graph)


def _batch_norm(node: torch.fx.Node) -> torch.fx.GraphModule | None:
    args = list(node.args)
    if node.kwargs or len(args) != 9 or args[5] is not False:
        return None
    x, weight, bias, mean, var, _, momentum, eps, _ = args
    if not (isinstance(mean, torch.fx.Node) and isinstance(var, torch.fx.Node)):
        return None

    def body(call: Callable[..., torch.fx.Node], arg: Arg) -> torch.fx.Node:
        normed = call(aten.native_batch_norm.default, arg(x), arg(weight), arg(bias), arg(mean),
                      arg(var), False, momentum, eps)
        return call(operator.getitem, normed, 0)

    return _graph(node, body)


def _global_average_pool(node: torch.fx.Node) -> torch.fx.GraphModule | None:
    size = node.args[1] if len(node.args) == 2 else None
    if node.kwargs or not isinstance(size, (list, tuple)) or list(size) != [1, 1]:
        return None
    x = node.args[0]
    val = x.meta.get("val") if isinstance(x, torch.fx.Node) else None
    if not isinstance(val, torch.Tensor) or val.dim() not in (3, 4):
        return None
    return _graph(node, lambda call, arg: call(aten.mean.dim, arg(x), [-1, -2], True))


RULES: dict[Any, Callable[[torch.fx.Node], torch.fx.GraphModule | None]] = {
    aten.batch_norm.default: _batch_norm,
    aten.adaptive_avg_pool2d.default: _global_average_pool,
}


def build(node: torch.fx.Node, target: Any) -> torch.fx.GraphModule | None:
    """The decomposition of ``node`` (as ``target``) built directly, or None (trace it)."""
    rule = RULES.get(target)
    return rule(node) if rule is not None and target is node.target else None
