"""Shared by the torch.fx and torch.export paths: FX nodes -> graph nodes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from typing import Any

from edgepipe.analysis.graph import Graph, OpNode, TensorInfo
from edgepipe.analysis.macs import function_macs
from edgepipe.analysis.torch_ops import (
    callable_name,
    flatten_value,
    function_aliases,
    leaf_names,
    module_aliases,
    module_macs,
)


class TorchGraphBuilder:
    """Turns FX nodes (from symbolic tracing or torch.export) into graph nodes.

    Weights are not activations: a weight node is recorded with :meth:`add_weight` and
    counted, once, in the params of the first op that reads it.
    """

    def __init__(self, method: str) -> None:
        self.method = method
        self.names: dict[Any, list[str]] = {}
        self.ranges: dict[Any, list[tuple[int, int]]] = {}
        self.weights: dict[Any, tuple[Hashable, int]] = {}
        self.tensors: dict[str, TensorInfo] = {}
        self.nodes: list[OpNode] = []
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.notes: list[str] = []
        self.seen_params: set[Hashable] = set()

    def add_weight(self, node: Any, value: Any, key: Hashable | None = None,
                   is_param: bool | None = None) -> None:
        """Record a weight node: a parameter counts its elements, a buffer counts none."""
        import torch

        if is_param is None:
            is_param = isinstance(value, torch.nn.Parameter)
        count = int(value.numel()) if is_param and hasattr(value, "numel") else 0
        self.weights[node] = (key if key is not None else id(value), count)

    def _register(self, node: Any, leaves: list, ranges: list) -> list[str]:
        names = leaf_names(node.name, leaves)
        self.names[node], self.ranges[node] = names, ranges
        for name, (shape, dtype) in zip(names, leaves, strict=True):
            self.tensors[name] = TensorInfo(name, shape, dtype)
        return names

    def add_input(self, node: Any, leaves: list, ranges: list) -> None:
        """A graph input (a placeholder the user feeds)."""
        self.inputs.extend(self._register(node, leaves, ranges))

    def set_outputs(self, nodes: list[Any]) -> None:
        """The graph outputs: the tensors of ``nodes``, in order."""
        self.outputs = [name for n in nodes for name in self.names.get(n, [])]

    def _count_new(self, weights: list[tuple[Hashable, int]]) -> int:
        total = 0
        for key, count in weights:
            if key not in self.seen_params:
                self.seen_params.add(key)
                total += count
        return total

    def add_op(self, node: Any, leaves: list, ranges: list, module: Any = None,
               name: str | None = None) -> None:
        """An op node; ``module`` is the leaf module of a ``call_module`` node."""
        inputs = [t for n in node.all_input_nodes for t in self.names.get(n, [])]
        weights = [self.weights[n] for n in node.all_input_nodes if n in self.weights]
        first = node.args[0] if node.args else None
        first_names = self.names.get(first, []) if first is not None else []
        outputs = self._register(node, leaves, ranges)
        out_shapes = [shape for shape, _ in leaves]
        arg_shapes = [_shape_of(a) for a in node.args]
        if module is not None:
            op_type = type(module).__name__
            name = name or str(node.target)
            owned = [(id(p), p.numel()) for p in module.parameters()]
            params = self._count_new(owned + weights)
            macs = module_macs(module, arg_shapes, out_shapes)
            alias = module_aliases(module)
        else:
            op_type, name = callable_name(node.target), name or node.name
            params = self._count_new(weights)
            macs = function_macs(op_type, arg_shapes, out_shapes[0],
                                 {"transposed": _transposed_flag(op_type, node.args)})
            alias = function_aliases(op_type, dict(node.kwargs), tuple(node.args))
        aliases: dict[str, str] = {}
        index = node.args[1] if len(node.args) > 1 else None
        if op_type == "getitem" and isinstance(index, int) and self.ranges.get(first):
            start, stop = self.ranges[first][index]
            if stop - start == len(outputs):
                aliases = dict(zip(outputs, first_names[start:stop], strict=True))
        elif alias and len(first_names) == 1 and len(outputs) == 1:
            aliases = {outputs[0]: first_names[0]}
        self.nodes.append(OpNode(name, op_type, list(dict.fromkeys(inputs)), outputs, params,
                                 macs, aliases))

    def graph(self) -> Graph:
        """The graph built so far, with repeated layer names made unique."""
        # A module called twice (one ReLU reused) gives two rows: relu, relu#2.
        seen: Counter[str] = Counter()
        for node in self.nodes:
            seen[node.name] += 1
            if seen[node.name] > 1:
                node.name = f"{node.name}#{seen[node.name]}"
        return Graph(self.nodes, self.tensors, self.inputs, self.outputs, self.method,
                     list(self.notes))


def _shape_of(arg: Any) -> tuple[int, ...] | None:
    """The shape an FX argument carries (from ShapeProp), or None for a non-tensor."""
    meta = getattr(arg, "meta", None)
    if not meta:
        return None
    leaves, _ = flatten_value(meta.get("tensor_meta", meta.get("val")))
    return leaves[0][0] if len(leaves) == 1 else None


def _transposed_flag(op_type: str, args: tuple[Any, ...]) -> bool:
    """``aten.convolution(input, weight, bias, stride, padding, dilation, transposed, ...)``."""
    return op_type in ("convolution", "_convolution") and len(args) > 6 and args[6] is True


def layer_names(graph: Any) -> dict[Any, str]:
    """A layer name per tensor-producing function call: the path of the innermost module
    it was called from (``nn_module_stack``), suffixed with the op when that module holds
    several (``layer1.0:add``); the node name when called from the root module."""
    paths: dict[Any, str] = {}
    for node in graph.nodes:
        value = node.meta.get("val", node.meta.get("tensor_meta"))
        if node.op not in ("call_function", "call_method") or not flatten_value(value)[0]:
            continue
        stack = node.meta.get("nn_module_stack") or {}
        path = list(stack.values())[-1][0] if stack else ""
        paths[node] = path
    # Distinct ops per module: a module calling one op twice is told apart by "#2" later.
    ops: dict[str, set[str]] = {}
    for node, path in paths.items():
        ops.setdefault(path, set()).add(callable_name(node.target))
    names = {}
    for node, path in paths.items():
        if not path:
            names[node] = node.name
        elif len(ops[path]) == 1:
            names[node] = path
        else:
            names[node] = f"{path}:{callable_name(node.target)}"
    return names
