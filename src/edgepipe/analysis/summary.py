"""What ``inspect`` reports: :class:`ModelSummary` and its :class:`LayerSummary` rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from edgepipe.analysis.graph import Graph, OpNode
from edgepipe.analysis.lifetimes import MemoryPlan

# One line for reports; the full rule is the docstring of edgepipe.analysis.macs.
MACS_COUNTED = (
    "convolutions (incl. grouped, depthwise, transposed), Linear/Gemm, MatMul/bmm/addmm, "
    "MultiheadAttention; not biases, normalisation, activations, pooling, element-wise ops"
)


@dataclass(frozen=True)
class LayerSummary:
    """One op in execution order, with the activation memory live while it runs."""

    index: int
    name: str
    op_type: str
    output_shapes: list[list[int]]
    output_dtypes: list[str]
    output_bytes: int
    allocates: bool  # False for views and in-place ops: they write no new buffer
    params: int
    macs: int
    live_bytes: int


@dataclass
class ModelSummary:
    """Parameters, MACs, size and activation memory of a model, layer by layer.

    ``method`` says how the graph was obtained (``torch.fx``, ``torch.export``, ``onnx
    shape inference``...); ``size_source`` what ``size_bytes`` measures (``onnx-file``,
    ``weights-file``, ``model-file`` or ``in-memory`` parameters and buffers).
    """

    model: str
    kind: str
    method: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    total_params: int
    total_macs: int
    size_bytes: int
    size_source: str
    peak_activation_bytes: int
    peak_layer: str | None
    peak_layer_index: int | None
    layers: list[LayerSummary]
    macs_counted: str = MACS_COUNTED
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (layers as a list of mappings)."""
        return asdict(self)


def layer_rows(graph: Graph, plan: MemoryPlan) -> list[LayerSummary]:
    """One :class:`LayerSummary` per graph node."""
    return [_row(i, node, graph, plan.live_bytes[i]) for i, node in enumerate(graph.nodes)]


def _row(index: int, node: OpNode, graph: Graph, live: int) -> LayerSummary:
    infos = [graph.tensors[name] for name in node.outputs if name in graph.tensors]
    return LayerSummary(
        index=index,
        name=node.name,
        op_type=node.op_type,
        output_shapes=[list(info.shape) for info in infos],
        output_dtypes=[info.dtype for info in infos],
        output_bytes=sum(info.nbytes for info in infos),
        allocates=node.allocates,
        params=node.params,
        macs=node.macs,
        live_bytes=live,
    )
