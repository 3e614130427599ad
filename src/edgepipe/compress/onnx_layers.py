"""Which layers of an ONNX graph a quantizer left in float, and why; exclude-list checks;
the node the exporter made from a given torch module (found by its scope name).

Shared by the ONNX Runtime backend and the accuracy budget: a compute node whose data and
weight both come from DequantizeLinear runs in int8 (ONNX Runtime fuses the pattern into
its integer kernels); any other compute node stays float and is listed with its reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgepipe.errors import InputError

# Ops that carry weights or do the bulk of the arithmetic: the layers worth listing when
# a quantizer leaves them in float.
COMPUTE_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "LSTM", "GRU", "RNN", "Attention",
               "MultiHeadAttention", "Einsum"}
# What dynamic quantization turns a compute node into when it does quantize it.
INT_OPS = {"MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul", "DynamicQuantizeLSTM",
           "QAttention", "QLinearConv", "QLinearMatMul"}


def check_exclude(path: Path, exclude: tuple[str, ...]) -> None:
    """Every name in ``exclude`` must be a node of the graph at ``path``."""
    if not exclude:
        return
    import onnx

    nodes = onnx.load(str(path), load_external_data=False).graph.node
    names = {n.name for n in nodes}
    unknown = [name for name in exclude if name not in names]
    if unknown:
        candidates = [n.name for n in nodes if n.op_type in COMPUTE_OPS]
        raise InputError(
            f"exclude names node(s) the model does not have: {', '.join(unknown)}.",
            hint=f"the model's compute nodes are: {', '.join(candidates) or 'none'}.",
            reference="unknown-layer")


def static_float_layers(path: Path, excluded: set[str]) -> list[dict[str, str]]:
    """Compute nodes whose data and weight inputs do not both come from DequantizeLinear."""
    import onnx

    graph = onnx.load(str(path)).graph
    producer = {out: node.op_type for node in graph.node for out in node.output}
    left = []
    for node in graph.node:
        if node.op_type not in COMPUTE_OPS:
            continue
        fed = [producer.get(name) == "DequantizeLinear" for name in list(node.input)[:2] if name]
        if len(fed) == 2 and all(fed):
            continue
        left.append({"layer": node.name, "op": node.op_type, "reason": reason(node, excluded)})
    return left


def dynamic_float_layers(path: Path, excluded: set[str]) -> list[dict[str, str]]:
    """Compute nodes still in their float form after dynamic quantization."""
    import onnx

    graph = onnx.load(str(path)).graph
    return [{"layer": n.name, "op": n.op_type, "reason": reason(n, excluded)}
            for n in graph.node if n.op_type in COMPUTE_OPS and n.op_type not in INT_OPS]


def reason(node: Any, excluded: set[str]) -> str:
    if node.name in excluded:
        return "excluded by the config"
    return f"onnxruntime.quantization does not quantize this {node.op_type} node"


WEIGHT_OPS = ("Conv", "Gemm", "MatMul")


def exported_node(graph: Any, module: str) -> Any:
    """The Conv / Gemm / MatMul node the TorchScript ONNX exporter made from ``module``.

    The exporter names a node by the scopes it ran in, ``/a/b.0/layer/Conv``: one entry per
    module whose forward ran, each the module's path from its nearest named (non-numeric)
    part on. The node matches when its scopes, in order, are such parts of ``module``'s
    path, ending with ``module`` itself.
    """
    atoms = module.split(".")
    parts = [_unqualified(".".join(atoms[:k])) for k in range(1, len(atoms) + 1)]
    for node in graph.node:
        if node.op_type not in WEIGHT_OPS or not node.name.startswith("/"):
            continue
        scopes = node.name.split("/")[1:-1]
        position = 0
        for scope in scopes:
            while position < len(parts) and parts[position] != scope:
                position += 1
            if position == len(parts):
                break
            position += 1
        else:
            if scopes and position == len(parts):
                return node
    return None


def _unqualified(qualified: str) -> str:
    atoms = qualified.split(".")
    for index in range(len(atoms) - 1, -1, -1):
        if not atoms[index].isnumeric():
            return ".".join(atoms[index:])
    return qualified
