"""Per-layer comparison, run when parity fails: which layer's output first goes wrong?

The torch module's leaf layers are hooked (their output on the parity inputs, last call
kept); the artifact exposes the same boundaries where its graph names them:

- ONNX from the dynamo exporter: each node's ``pkg.torch.onnx.name_scopes`` metadata names
  the module that made it; the last such node's output is that module's output.
- OpenVINO IR converted from torch: op names start with ``__module.PATH/``.

Those tensors are added as extra outputs and compared in the order torch ran the layers.
Boundaries a converter fused away (a BatchNorm folded into its conv) or whose shape differs
are skipped. TFLite (LiteRT's preserved tensors, matched by name or shape, channel-last
artifacts included) is in :mod:`edgepipe.export.layers_tflite`, ExecuTorch (its numeric
debugger, per portable operator and XNNPACK delegate) in
:mod:`edgepipe.export.layers_executorch`.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.export.activations import torch_activations
from edgepipe.export.layers_tflite import compare_tflite_layers
from edgepipe.export.validate import compare_one


def compare_layers(module: Any, sample: list[np.ndarray], artifact: Path, atol: float,
                   threads: int | None = None,
                   channel_last_inputs: list[int] | None = None,
                   dynamic_shapes: Any = None) -> dict[str, Any]:
    """Layer-by-layer differences between ``module`` and ``artifact``; the first over ``atol``.

    ``sample`` is channel-first; ``channel_last_inputs`` lists the inputs the artifact takes
    channel-last (they are transposed before it runs); ``dynamic_shapes`` are the ones a
    ``.pte`` was exported with (it is lowered again to map its operators).
    """
    suffix = artifact.suffix.lower()
    if suffix == ".pte":
        from edgepipe.export.layers_executorch import compare_pte_layers

        return compare_pte_layers(module, sample, artifact, atol, dynamic_shapes)
    if suffix == ".tflite":
        return compare_tflite_layers(module, sample, artifact, atol, threads,
                                     channel_last_inputs)
    if channel_last_inputs:
        return {"available": False, "reason": f"channel-last {suffix} artifacts are not "
                "compared per layer"}
    if suffix == ".onnx":
        boundaries = onnx_boundaries(artifact)
    elif suffix == ".xml":
        boundaries = openvino_boundaries(artifact)
    else:
        return {"available": False, "reason": f"no per-layer mapping for {suffix} artifacts"}
    reference = torch_activations(module, sample)
    layers = [path for path in reference if path in boundaries]
    if not layers:
        return {"available": False, "reason": "no layer boundary is named on both sides"}
    outputs = _run_with_outputs(artifact, [boundaries[p] for p in layers], sample, threads)
    rows = []
    for path, actual in zip(layers, outputs, strict=True):
        ref = reference[path]
        if actual is None or actual.size != ref.size:
            continue
        parity = compare_one(path, ref, actual.reshape(ref.shape), atol)
        rows.append({"layer": path, "max_abs_diff": parity.max_abs_diff,
                     "limit": parity.limit, "sqnr_db": parity.to_dict()["sqnr_db"],
                     "passed": parity.passed})
    first = next((row["layer"] for row in rows if not row["passed"]), None)
    return {"available": True, "compared": len(rows), "first_divergent": first, "layers": rows}


def onnx_boundaries(path: Path) -> dict[str, str]:
    """Module path -> the ONNX tensor its last node produced (dynamo exporter metadata)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    found: dict[str, str] = {}
    for node in proto.graph.node:
        if node.op_type == "Constant" or not node.output:
            continue
        meta = {m.key: m.value for m in node.metadata_props}
        scopes = meta.get("pkg.torch.onnx.name_scopes")
        if not scopes:
            continue
        try:
            names = ast.literal_eval(scopes)
        except (ValueError, SyntaxError):
            continue
        if len(names) >= 3:  # ['', module path..., fx node name]
            found[names[-2]] = node.output[0]
    return found


def openvino_boundaries(path: Path) -> dict[str, str]:
    """Module path -> the OpenVINO op (``name:port``) that last computed in it."""
    from edgepipe.runtime.openvino_runtime import import_openvino

    ov = import_openvino()
    model = ov.Core().read_model(str(path))
    found: dict[str, str] = {}
    for op in model.get_ordered_ops():
        name = op.get_friendly_name()
        if not name.startswith("__module.") or op.get_type_name() in ("Constant", "Result"):
            continue
        found[name.removeprefix("__module.").split("/", 1)[0]] = name
    return found


def _run_with_outputs(artifact: Path, names: list[str], sample: list[np.ndarray],
                      threads: int | None) -> list[np.ndarray | None]:
    if artifact.suffix.lower() == ".onnx":
        from edgepipe.runtime.onnx_runtime import OnnxRuntimeSession

        session = OnnxRuntimeSession(artifact, threads, extra_outputs=names)
        by_name = dict(zip([s.name for s in session.outputs], session.run(sample), strict=True))
        return [by_name.get(n) for n in names]
    from edgepipe.runtime.base import default_threads
    from edgepipe.runtime.openvino_runtime import import_openvino

    ov = import_openvino()
    core = ov.Core()
    model = core.read_model(str(artifact))
    ops = {op.get_friendly_name(): op for op in model.get_ordered_ops()}
    model.add_outputs([ops[n].output(0) for n in names])
    producers = [result.get_node().input_value(0).get_node().get_friendly_name()
                 for result in model.outputs]
    compiled = core.compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads or default_threads()})
    result = compiled([np.ascontiguousarray(a) for a in sample])
    values = [np.array(result[port]) for port in compiled.outputs]
    return [values[producers.index(n)] if n in producers else None for n in names]
