"""``inspect_model``: a loaded model -> its :class:`ModelSummary`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.analysis.graph import Graph
from edgepipe.analysis.lifetimes import plan_memory
from edgepipe.analysis.summary import ModelSummary, layer_rows
from edgepipe.errors import EdgepipeError, UnsupportedError, root_cause
from edgepipe.model import LoadedModel


def inspect_model(loaded: LoadedModel) -> ModelSummary:
    """Parameters, MACs, per-layer activations, size and peak activation memory of a model.

    Shapes are those of ``loaded.inputs`` with a dynamic batch set to 1. See
    :mod:`edgepipe.analysis.macs` for which ops count MACs and
    :mod:`edgepipe.analysis.lifetimes` for the memory model.
    """
    graph = build_graph(loaded)
    plan = plan_memory(graph)
    layers = layer_rows(graph, plan)
    if loaded.kind == "torch" and loaded.module is not None:
        total_params = sum(p.numel() for p in loaded.module.parameters())
    else:
        total_params = sum(node.params for node in graph.nodes)
    size, size_source = model_size(loaded)
    peak = plan.peak_index
    return ModelSummary(
        model=loaded.spec,
        kind=loaded.kind,
        method=graph.method,
        inputs=[s.with_shape(s.concrete_shape(1)).to_dict() for s in loaded.inputs],
        outputs=[{"name": n, "shape": list(graph.tensors[n].shape),
                  "dtype": graph.tensors[n].dtype} for n in graph.outputs if n in graph.tensors],
        total_params=int(total_params),
        total_macs=sum(node.macs for node in graph.nodes),
        size_bytes=size,
        size_source=size_source,
        peak_activation_bytes=plan.peak_bytes,
        peak_layer=graph.nodes[peak].name if peak is not None else None,
        peak_layer_index=peak,
        layers=layers,
        notes=list(graph.notes),
    )


def build_graph(loaded: LoadedModel) -> Graph:
    """The graph of a loaded model, shapes set by its sample inputs.

    The seeded random inputs come first; when the model fails on them (token ids out of
    an embedding's range, say) the graph is built on zeros instead, and a note says so.
    """
    samples = loaded.sample_inputs()
    attempts = [("seeded random", samples), ("zero", [np.zeros_like(a) for a in samples])]
    errors = []
    for label, arrays in attempts:
        try:
            graph = _graph_on(loaded, arrays)
        except EdgepipeError:
            raise
        except Exception as exc:  # the model's own failure on these values
            errors.append(f"on {label} inputs: {root_cause(exc)}")
            continue
        if errors:
            graph.notes.append(f"Shapes taken on zero inputs; the model failed {errors[0]}.")
        return graph
    raise UnsupportedError(
        f"edgepipe could not build the graph of '{loaded.spec}': " + "; ".join(errors),
        hint="run with --debug for the traceback; for a torch model, check that it runs on "
        "inputs of the given shapes and dtypes.",
        reference="inspect-failed",
    )


def _graph_on(loaded: LoadedModel, arrays: list[np.ndarray]) -> Graph:
    if loaded.kind == "onnx":
        from edgepipe.analysis.from_onnx import onnx_graph

        assert loaded.onnx_path is not None
        return onnx_graph(loaded.onnx_path, loaded.inputs, arrays)
    return _torch_graph(loaded.module, arrays)


def _torch_graph(module: Any, arrays: list[np.ndarray]) -> Graph:
    """torch.fx first; torch.export when FX cannot trace the model."""
    import torch

    from edgepipe.analysis.from_export import export_graph, export_program
    from edgepipe.analysis.from_torch import FX_METHOD, GRAPH_MODULE_METHOD, fx_graph, trace_fx

    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
    try:
        traced = trace_fx(module)
    except Exception as exc:  # data-dependent control flow, mostly
        reason = root_cause(exc)
    else:
        method = GRAPH_MODULE_METHOD if traced is module else FX_METHOD
        return fx_graph(traced, tensors, method)
    with torch.no_grad():
        program, method = export_program(module, tensors)
    graph = export_graph(program, method)
    graph.notes.insert(0, f"torch.fx could not trace the model ({reason}); "
                          f"the graph comes from {method}.")
    return graph


def model_size(loaded: LoadedModel) -> tuple[int, str]:
    """Bytes of the model on disk, and what was measured (``size_source``)."""
    if loaded.kind == "onnx":
        files = [p for p in (loaded.files or [loaded.onnx_path]) if p and Path(p).is_file()]
        source = "onnx-file+external-data" if len(files) > 1 else "onnx-file"
        return sum(Path(p).stat().st_size for p in files), source
    if loaded.weights is not None:
        return Path(loaded.weights).stat().st_size, "weights-file"
    model_files = [p for p in loaded.files
                   if Path(p).suffix.lower() in (".pt2", ".pt", ".pth") and Path(p).is_file()]
    if model_files:
        return sum(Path(p).stat().st_size for p in model_files), "model-file"
    assert loaded.module is not None
    tensors = [*loaded.module.parameters(), *loaded.module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors), "in-memory-parameters-and-buffers"
