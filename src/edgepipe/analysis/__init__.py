"""Graph analysis behind ``edgepipe inspect``: parameters, MACs, activation memory.

``inspect_model(loaded)`` builds a backend-neutral :class:`Graph` (torch.fx, torch.export
or ONNX), counts parameters and MACs per layer, and computes peak activation memory from
tensor lifetimes. Torch and ONNX are imported only when a model is inspected.
"""

from edgepipe.analysis.graph import Graph, OpNode, TensorInfo
from edgepipe.analysis.inspect import build_graph, inspect_model, model_size
from edgepipe.analysis.lifetimes import MemoryPlan, plan_memory
from edgepipe.analysis.summary import LayerSummary, ModelSummary

__all__ = [
    "Graph",
    "LayerSummary",
    "MemoryPlan",
    "ModelSummary",
    "OpNode",
    "TensorInfo",
    "build_graph",
    "inspect_model",
    "model_size",
    "plan_memory",
]
