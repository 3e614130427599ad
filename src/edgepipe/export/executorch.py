"""ExecuTorch (.pte) export: torch.export, then XNNPACK lowering, then the ExecuTorch program.

The stages are ``torch.export.export`` (export), ``to_edge_transform_and_lower`` with the
XNNPACK partitioner (to_edge and lowering are one call in ExecuTorch; its error says which
failed when it can), and ``to_executorch`` (memory planning and serialization). A failing
stage is named in the error, with the operators its message names.

The lowered program is split in two: operators inside XNNPACK delegates, and those left to
ExecuTorch's portable kernels. The split is recorded in the artifact's tool record as
``delegation`` (backend, delegated and portable node counts, the portable operators by name).
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

from edgepipe.export.base import (
    Exported,
    ExportJob,
    conversion_failed,
    log,
    quiet_tool,
    require_torch_source,
)
from edgepipe.json_types import JsonObject
from edgepipe.rundir import atomic_write_bytes

BACKEND = "XnnpackBackend"
HINT = ("ExecuTorch lowers torch.export's core ATen ops; rewrite the failing part of forward(), "
        "or export ONNX/OpenVINO instead. --debug shows the traceback.")


def export(job: ExportJob) -> Exported:
    """Write ``job.path`` (.pte) from a torch model, delegating what XNNPACK takes."""
    require_torch_source(job.source, "ExecuTorch", "ExecuTorch lowers torch programs "
                         "(torch.export), and there is no ONNX-to-ExecuTorch converter.",
                         reference="executorch-from-onnx")
    # executorch's import registers Enums with torch's pytree, which logs a deprecation
    # warning that is torch's business, not the user's (as litert-torch's does).
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    if job.config.nhwc:
        log.warning("--nhwc applies to TFLite; the .pte keeps the model's own layout.")
    if job.dynamic_batch:
        log.warning("ExecuTorch is exported with a fixed batch of %d: dynamic shapes are not "
                    "used by edgepipe's ExecuTorch export yet.", job.sample[0].shape[0])
    module = job.source.module.eval()
    args = job.torch_args()
    with quiet_tool("executorch"):
        with _stage("export"):
            # the sequence axis of a text encoder stays dynamic; the batch does not (with
            # XNNPACK delegates a dynamic batch came out bounded at 15 whatever its max)
            program = torch.export.export(module, args,
                                          dynamic_shapes=job.torch_dynamic_shapes(batch=False))
        with _stage("to_edge/lowering"):
            edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
        delegation = delegation_split(edge.exported_program().graph_module)
        with _stage("to_executorch"):
            buffer = edge.to_executorch().buffer
    atomic_write_bytes(job.path, buffer)  # the staging folder's file appears whole or not at all
    tool: dict[str, Any] = {"exporter": "executorch", "version": version("executorch"),
                            "partitioner": "XnnpackPartitioner", "dynamic_batch": False,
                            "dynamic_axes": [a.name for a in job.source.dynamic_axes],
                            "delegation": delegation}
    if delegation["portable_ops"]:
        log.info("ExecuTorch: %d op(s) run on the portable kernels, not XNNPACK: %s",
                 delegation["portable_ops"], ", ".join(delegation["portable"]))
    return Exported(job.path, [job.path], "fp32", tool)


@contextlib.contextmanager
def _stage(name: str) -> Iterator[None]:
    """A failure inside one stage is ``executorch-export-failed`` naming the stage."""
    try:
        yield
    except Exception as exc:
        raise conversion_failed(f"ExecuTorch could not convert the model (stage: {name})",
                                exc, hint=HINT, reference="executorch-export-failed") from exc


def delegation_split(graph_module: Any) -> JsonObject:
    """Which operators went to XNNPACK and which stayed on the portable kernels.

    ``delegated_ops`` counts the operator nodes inside the delegates' lowered graphs,
    ``portable_ops`` the operator nodes of the top-level graph outside any delegate (the
    tuple indexing that reads a delegate's outputs is not an operator and is not counted);
    ``portable`` is ``{operator: count}`` for those.
    """
    delegated: Counter[str] = Counter()
    portable: Counter[str] = Counter()
    delegates = 0
    for node in graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        name = _op_name(node.target)
        if name == "executorch_call_delegate":
            delegates += 1
            lowered = getattr(graph_module, node.args[0].target)
            for inner in lowered.original_module.graph_module.graph.nodes:
                if inner.op == "call_function" and _op_name(inner.target) != "getitem":
                    delegated[_op_name(inner.target)] += 1
        elif name != "getitem":
            portable[name] += 1
    return {"backend": BACKEND, "delegates": delegates,
            "delegated_ops": sum(delegated.values()), "portable_ops": sum(portable.values()),
            "delegated": dict(sorted(delegated.items())), "portable": dict(sorted(portable.items()))}


def _op_name(target: Any) -> str:
    """``aten.convolution.default`` for an edge op, ``getitem`` for operator.getitem."""
    return str(getattr(target, "__name__", None) or target).replace("::", ".")
