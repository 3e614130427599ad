"""The fast half of the operator check: each distinct op of a torch.export graph, looked up
in a format's table, and decomposed with that format's decomposition table when missing.

The decomposition is traced with ``make_fx`` on meta tensors of the node's shapes (no
weights, no arithmetic), once per distinct op and argument signature. In-place ops are
looked up by their functional form, as every converter here sees functionalized graphs.
"""

from __future__ import annotations

from typing import Any

from edgepipe.export.support_tools import ignored, quiet


def screen(tool: Any, program: Any) -> tuple[dict[str, list[Any]], int]:
    """Ops the tool's table lacks after its decompositions -> the graph nodes behind them;
    and the number of distinct graph ops looked at."""
    import torch

    table = tool.table()
    suspects: dict[str, list[Any]] = {}
    cache: dict[Any, list[str]] = {}
    distinct = set()
    for node in program.graph.nodes:
        if node.op != "call_function" or not isinstance(node.target, torch._ops.OpOverload):
            continue
        op = functional(node.target)
        distinct.add(op)
        if ignored(op) or tool.known(op):
            continue
        key = (op, _signature(node))
        if key not in cache:
            cache[key] = _leftovers(op, node, table, tool.known)
        for name in cache[key]:
            suspects.setdefault(name, []).append(node)
    return suspects, len(distinct)


def functional(op: Any) -> Any:
    """``aten.relu_.default`` -> ``aten.relu.default``: converters see functionalized graphs."""
    import torch

    name = op._schema.name.split("::")[-1]
    if not name.endswith("_") or name.startswith("_"):
        return op
    packet = getattr(torch.ops.aten, name[:-1], None)
    return getattr(packet, op._overloadname, op) if packet is not None else op


def _leftovers(op: Any, node: Any, table: dict[Any, Any], known: Any) -> list[str]:
    """The ops ``op`` decomposes into (with ``table``) that ``known`` refuses."""
    import torch
    from torch.fx.experimental.proxy_tensor import make_fx
    from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

    def meta(value: Any) -> Any:
        val = value.meta.get("val") if isinstance(value, torch.fx.Node) else value
        if isinstance(val, torch.Tensor):
            return torch.empty(tuple(int(d) for d in val.shape), dtype=val.dtype, device="meta")
        return val

    flat, spec = tree_flatten((tree_map(meta, node.args), tree_map(meta, node.kwargs)))
    where = [i for i, a in enumerate(flat) if isinstance(a, torch.Tensor)]

    def call(*tensors: Any) -> Any:
        values = list(flat)
        for i, tensor in zip(where, tensors, strict=True):
            values[i] = tensor
        args, kwargs = tree_unflatten(values, spec)
        return op(*args, **kwargs)

    try:
        with quiet():
            traced = make_fx(call, decomposition_table=table)(*[flat[i] for i in where])
    except Exception:  # no meta kernel, data-dependent: leave it to the exact check
        return [str(op)]
    left = []
    for inner in traced.graph.nodes:
        target = inner.target
        if inner.op != "call_function" or not isinstance(target, torch._ops.OpOverload):
            continue
        target = functional(target)
        if not ignored(target) and not known(target) and str(target) not in left:
            left.append(str(target))
    return left


def _signature(node: Any) -> str:
    import torch

    def describe(value: Any) -> Any:
        val = value.meta.get("val") if isinstance(value, torch.fx.Node) else value
        if isinstance(val, torch.Tensor):
            return (tuple(val.shape), str(val.dtype))
        return val

    from torch.utils._pytree import tree_map

    return repr(tree_map(describe, (node.args, node.kwargs)))
