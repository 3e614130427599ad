"""Where a model can be cut so that exactly one tensor crosses, and the cut itself.

The model is traced with torch.fx; a cut after node *i* is valid when the only value
computed at or before *i* that a later node still needs is node *i*'s own output (a single
tensor). Inside a residual block two tensors cross (the branch and the skip), so ResNets
cut between blocks. A cut is named by its node (``layer2_1_relu_1``), and a module path
(``layer2``, ``pool2``) names the last valid cut inside that module.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.fx
from torch import nn

from edgepipe.errors import InputError


@dataclass(frozen=True)
class CutPoint:
    """One valid cut: after ``node``; the tensor that crosses and what precedes it."""

    index: int
    node: str
    module: str | None
    label: str  # what --at takes: the module path, or the node when a module runs twice
    shape: tuple[int, ...]
    dtype: str
    bytes: int
    head_params: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def trace(module: nn.Module, sample: torch.Tensor) -> torch.fx.GraphModule:
    """The traced module with every node's output shape recorded (``meta['tensor_meta']``)."""
    from torch.fx.passes.shape_prop import ShapeProp

    from edgepipe.analysis.from_torch import trace_fx

    traced = trace_fx(module)
    with torch.no_grad():
        ShapeProp(traced).propagate(sample)
    return traced


def _crossing(nodes: list[torch.fx.Node], index: int) -> list[torch.fx.Node]:
    position = {node: i for i, node in enumerate(nodes)}
    return [node for node in nodes[:index + 1]
            if any(position[user] > index for user in node.users)]


def cut_points(traced: torch.fx.GraphModule) -> list[CutPoint]:
    """Every valid cut, in execution order (the input and the final output excluded)."""
    nodes = list(traced.graph.nodes)
    calls: dict[str, int] = {}
    for node in nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    params = dict(traced.named_parameters())
    points, seen_params = [], 0
    counted: set[str] = set()
    for index, node in enumerate(nodes):
        if node.op == "call_module":
            for name, p in traced.get_submodule(node.target).named_parameters():
                key = f"{node.target}.{name}"
                if key in params and key not in counted:
                    counted.add(key)
                    seen_params += p.numel()
        if node.op in ("placeholder", "output", "get_attr"):
            continue
        meta = node.meta.get("tensor_meta")
        if not hasattr(meta, "shape") or nodes[index + 1].op == "output":
            continue
        if _crossing(nodes, index) != [node]:
            continue
        shape = tuple(int(d) for d in meta.shape)
        dtype = str(meta.dtype).replace("torch.", "")
        module = node.target if node.op == "call_module" else None
        label = module if module and calls[module] == 1 else node.name
        points.append(CutPoint(index, node.name, module, label, shape, dtype,
                               int(torch.Size(shape).numel()) * torch.empty(
                                   0, dtype=meta.dtype).element_size(), seen_params))
    return points


def find_cut(traced: torch.fx.GraphModule, at: str) -> CutPoint:
    """The cut called ``at`` (node name, or module path: its last valid cut)."""
    points = cut_points(traced)
    for point in points:
        if at in (point.node, point.label):
            return point
    graph_nodes = list(traced.graph.nodes)
    members = [i for i, n in enumerate(graph_nodes)
               if n.op == "call_module" and (n.target == at or n.target.startswith(at + "."))]
    if members:
        # The module's last node, and the functional ops right after it (a residual add)
        # that belong to it too: up to the next module call.
        end = members[-1]
        while end + 1 < len(graph_nodes) and graph_nodes[end + 1].op in ("call_function",
                                                                         "call_method"):
            end += 1
        inside = [p for p in points if members[0] <= p.index <= end]
        if inside and inside[-1].index >= members[-1]:
            return inside[-1]
    nodes = {n.name: i for i, n in enumerate(traced.graph.nodes)}
    names = [p.label for p in points]
    if at in nodes or any(str(n.target).startswith(at) for n in traced.graph.nodes):
        index = nodes.get(at, max(i for i, n in enumerate(traced.graph.nodes)
                                  if str(n.target).startswith(at)))
        crossing = [n.name for n in _crossing(list(traced.graph.nodes), index)]
        nearest = min(points, key=lambda p: abs(p.index - index)) if points else None
        raise InputError(
            f"At {at!r} more than one tensor crosses the cut ({', '.join(crossing)}).",
            hint=(f"the nearest single-tensor cut is {nearest.label}; "
                  if nearest else "") + "`edgepipe split points MODEL` lists them.",
            reference="multi-tensor-cut", details={"crossing": crossing})
    close = difflib.get_close_matches(at, names, n=3, cutoff=0.4)
    raise InputError(f"The model has no cut point {at!r}.",
                     hint=(f"did you mean {', '.join(close)}? " if close else "")
                     + "valid cuts: " + ", ".join(names[:30]), reference="unknown-cut")


def split_graph(traced: torch.fx.GraphModule, index: int) -> tuple[torch.fx.GraphModule,
                                                                   torch.fx.GraphModule]:
    """(head, tail): the nodes up to ``index`` returning its tensor, and the rest taking it."""
    nodes = list(traced.graph.nodes)
    head_graph, env = torch.fx.Graph(), {}
    for node in nodes[:index + 1]:
        env[node] = head_graph.node_copy(node, lambda n: env[n])
    head_graph.output(env[nodes[index]])
    tail_graph = torch.fx.Graph()
    env = {nodes[index]: tail_graph.placeholder("cut")}
    for node in nodes[index + 1:]:
        if node.op == "output":
            tail_graph.output(torch.fx.map_arg(node.args[0], lambda n: env[n]))
        else:
            env[node] = tail_graph.node_copy(node, lambda n: env[n])
    return torch.fx.GraphModule(traced, head_graph), torch.fx.GraphModule(traced, tail_graph)
