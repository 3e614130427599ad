"""A torch ``nn.Module`` -> :class:`Graph` through ``torch.export``, for models FX cannot trace.

``torch.export.export(..., strict=False)`` gives an ATen graph with shapes on every node.
It too stops at a branch on tensor data (``if x.sum() > 0:``); then
``torch.export.draft_export`` runs the model on the real sample inputs to decide such
branches, so the graph is the path *these inputs* take. The summary's ``method`` says
which of the two made the graph.

ATen nodes have no module names of their own: see
:func:`edgepipe.analysis.torch_builder.layer_names`.
"""

from __future__ import annotations

from typing import Any

from edgepipe.analysis.graph import Graph
from edgepipe.analysis.torch_builder import TorchGraphBuilder, layer_names
from edgepipe.analysis.torch_ops import flatten_value, quiet_torch

EXPORT_METHOD = "torch.export"
DRAFT_METHOD = "torch.export (draft: specialised on the sample inputs)"


def export_program(module: Any, samples: list[Any]) -> tuple[Any, str]:
    """An ExportedProgram of ``module`` on ``samples``, and the method that made it."""
    import torch

    with quiet_torch():
        try:
            return torch.export.export(module, tuple(samples), strict=False), EXPORT_METHOD
        except Exception:
            # Usually a guard on tensor data; draft export resolves it on the real inputs.
            return torch.export.draft_export(module, tuple(samples), strict=False), DRAFT_METHOD


def export_graph(program: Any, method: str) -> Graph:
    """The :class:`Graph` of an ExportedProgram (weights lifted as placeholders)."""
    signature = program.graph_signature
    parameters = dict(signature.inputs_to_parameters)
    other_weights = {**signature.inputs_to_buffers,
                     **signature.inputs_to_lifted_tensor_constants}
    user_inputs = set(signature.user_inputs)
    user_outputs = set(signature.user_outputs)
    names = layer_names(program.graph)
    builder = TorchGraphBuilder(method)
    for node in program.graph.nodes:
        value = node.meta.get("val")
        leaves, ranges = flatten_value(value)
        if node.op == "placeholder":
            if node.name in parameters:
                builder.add_weight(node, value, key=parameters[node.name], is_param=True)
            elif node.name in other_weights:
                builder.add_weight(node, value, key=other_weights[node.name], is_param=False)
            elif node.name in user_inputs:
                builder.add_input(node, leaves, ranges)
        elif node.op == "output":
            outputs = node.args[0] if isinstance(node.args[0], (list, tuple)) else node.args
            builder.set_outputs([n for n in outputs
                                 if getattr(n, "name", None) in user_outputs])
        elif node.op == "call_function" and leaves:
            builder.add_op(node, leaves, ranges, name=names.get(node))
    return builder.graph()
