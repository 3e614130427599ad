"""A torch ``nn.Module`` -> :class:`Graph`, by torch.fx tracing (or torch.export, see below).

The first choice is ``torch.fx.symbolic_trace`` with the standard ``torch.nn`` modules as
leaves, so each layer keeps its module path as its name (``layer1.0.conv1``), and
``ShapeProp`` on sample inputs for the shapes. FX cannot trace data-dependent control flow
(``if x.sum() > 0:``); such models go to :mod:`edgepipe.analysis.from_export`.
"""

from __future__ import annotations

from typing import Any

from edgepipe.analysis.graph import Graph
from edgepipe.analysis.torch_builder import TorchGraphBuilder, layer_names
from edgepipe.analysis.torch_ops import flatten_value, quiet_torch

FX_METHOD = "torch.fx"
GRAPH_MODULE_METHOD = "torch.fx (the GraphModule as loaded)"


def trace_fx(module: Any) -> Any:
    """Symbolically trace ``module`` (standard torch.nn modules stay leaves).

    A module that is already a GraphModule (a loaded ``.pt2`` program) is used as it is:
    tracing it again would drop the module paths its nodes carry.
    """
    import torch.fx

    if isinstance(module, torch.fx.GraphModule):
        return module
    return torch.fx.symbolic_trace(module)


def fx_graph(graph_module: Any, samples: list[Any], method: str = FX_METHOD) -> Graph:
    """The :class:`Graph` of a traced module, shapes propagated on ``samples``."""
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    with torch.no_grad(), quiet_torch():
        ShapeProp(graph_module).propagate(*samples)
    modules = dict(graph_module.named_modules())
    names = layer_names(graph_module.graph)
    builder = TorchGraphBuilder(method)
    for node in graph_module.graph.nodes:
        leaves, ranges = flatten_value(node.meta.get("tensor_meta"))
        if node.op == "placeholder":
            builder.add_input(node, leaves, ranges)
        elif node.op == "get_attr":
            builder.add_weight(node, _fetch_attr(graph_module, node.target))
        elif node.op == "output":
            builder.set_outputs(_output_nodes(node))
        elif leaves:
            module = modules[node.target] if node.op == "call_module" else None
            builder.add_op(node, leaves, ranges, module, name=names.get(node))
    return builder.graph()


def _fetch_attr(root: Any, target: str) -> Any:
    value = root
    for part in target.split("."):
        value = getattr(value, part)
    return value


def _output_nodes(node: Any) -> list[Any]:
    from torch.fx.node import map_arg

    found: list[Any] = []
    map_arg(node.args, found.append)
    return found
