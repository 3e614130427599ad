"""An ONNX file -> :class:`Graph`.

Shapes come from ONNX shape inference with the graph inputs fixed to the concrete input
shapes; values static inference leaves unknown (data-dependent shapes, custom ops) are
measured by running the model in onnxruntime on the sample inputs with those values
added as graph outputs.

Parameters are the elements of initializers and ``Constant`` tensors, except what is not
a weight in torch terms: rank-0 scalars, int64 tensors (shapes, axes, indices) and the
running mean/variance of ``BatchNormalization`` (buffers in torch). With this rule the
torch and ONNX graphs of one model give the same count, unless the exporter changed the
weights themselves (the dynamo exporter folds eval BatchNorm into the previous Conv, so
the BN scale and shift disappear from the ONNX graph).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.analysis.graph import Graph, OpNode, TensorInfo, numel
from edgepipe.analysis.macs import conv_macs, conv_transpose_macs, gemm_macs, matmul_macs
from edgepipe.tensors import TensorSpec

ONNX_METHOD = "onnx shape inference"
_PROTOBUF_LIMIT = 2**31 - 1
VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"})
# Inputs that are running statistics (buffers), not learned weights.
_NOT_WEIGHTS = {"BatchNormalization": (3, 4)}
# Where the weight (Conv) or the left operand (MatMul) sits among the inputs, for MACs.
_CONV_WEIGHT = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}
_MATMUL_A = {"MatMul": 0, "MatMulInteger": 0, "QLinearMatMul": 0}


def onnx_graph(path: Path, inputs: list[TensorSpec], samples: list[np.ndarray]) -> Graph:
    """The :class:`Graph` of the ONNX file at ``path`` for the given input specs."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    weights = {init.name: (tuple(init.dims), init.data_type) for init in graph.initializer}
    concrete = {spec.name: spec.concrete_shape(1) for spec in inputs}
    graph_inputs = [v.name for v in graph.input if v.name not in weights]
    _fix_input_dims(graph, concrete)
    shapes = _inferred_shapes(model)
    notes: list[str] = []
    method = ONNX_METHOD
    produced = [out for node in graph.node if node.op_type != "Constant"
                for out in node.output if out]
    missing = [name for name in [*produced, *(v.name for v in graph.output)]
               if name not in shapes]
    if missing:
        shapes.update(_run_for_shapes(path, list(dict.fromkeys(missing)), inputs, samples))
        method = f"{ONNX_METHOD} + onnxruntime"
        notes.append(f"{len(set(missing))} tensor shape(s) measured with onnxruntime "
                     "(static inference left them unknown).")

    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    weights[node.output[0]] = (tuple(attr.t.dims), attr.t.data_type)
    tensors = {name: TensorInfo(name, shape, dtype) for name, (shape, dtype) in shapes.items()
               if name not in weights}
    for name in graph_inputs:
        if name in concrete and name not in tensors:
            spec = next(s for s in inputs if s.name == name)
            tensors[name] = TensorInfo(name, concrete[name], spec.dtype)
    nodes, seen = [], set()
    for index, node in enumerate(graph.node):
        if node.op_type == "Constant":
            continue
        nodes.append(_op_node(node, index, weights, tensors, seen))
    outputs = [v.name for v in graph.output]
    return Graph(nodes, tensors, graph_inputs, outputs, method, notes)


def count_params(weights: dict[str, tuple[tuple[int, ...], int]], names: list[str],
                 skip: set[str]) -> int:
    """Elements of the weight tensors among ``names`` (see the module docstring)."""
    import onnx

    total = 0
    for name in names:
        if name not in weights or name in skip:
            continue
        dims, data_type = weights[name]
        if dims and data_type != onnx.TensorProto.INT64:
            total += numel(dims)
    return total


def _op_node(node: Any, index: int, weights: dict, tensors: dict[str, TensorInfo],
             seen: set[str]) -> OpNode:
    reads = [name for name in [*node.input, *_subgraph_reads(node)] if name]
    skip = {node.input[i] for i in _NOT_WEIGHTS.get(node.op_type, ()) if i < len(node.input)}
    new_weights = [n for n in dict.fromkeys(reads) if n in weights and n not in seen]
    seen.update(new_weights)
    outputs = [name for name in node.output if name]
    aliases = {}
    if node.op_type in VIEW_OPS and outputs and node.input and node.input[0] in tensors:
        aliases = {outputs[0]: node.input[0]}
    return OpNode(
        name=node.name or f"{node.op_type}_{index}",
        op_type=node.op_type,
        inputs=[n for n in dict.fromkeys(reads) if n in tensors],
        outputs=outputs,
        params=count_params(weights, new_weights, skip),
        macs=_node_macs(node, weights, tensors),
        aliases=aliases,
    )


def _node_macs(node: Any, weights: dict, tensors: dict[str, TensorInfo]) -> int:
    def shape(i: int) -> tuple[int, ...] | None:
        if i >= len(node.input) or not node.input[i]:
            return None
        name = node.input[i]
        if name in weights:
            return weights[name][0]
        return tensors[name].shape if name in tensors else None

    out = tensors.get(node.output[0]) if node.output else None
    if out is None:
        return 0
    op = node.op_type
    if op in _CONV_WEIGHT and (w := shape(_CONV_WEIGHT[op])):
        return conv_macs(out.shape, w)
    if op == "ConvTranspose" and (x := shape(0)) and (w := shape(1)):
        return conv_transpose_macs(x, w)
    if op == "Gemm" and (a := shape(0)):
        trans_a = any(attr.name == "transA" and attr.i for attr in node.attribute)
        return gemm_macs(a, out.shape, trans_a)
    if op in _MATMUL_A and (a := shape(_MATMUL_A[op])):
        return matmul_macs(a, out.shape)
    return 0


def _subgraph_reads(node: Any) -> list[str]:
    """Outer values read inside an If/Loop/Scan body: they must live until the node runs."""
    reads: list[str] = []
    for attr in node.attribute:
        for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
            local = {v.name for v in sub.input} | {i.name for i in sub.initializer}
            for inner in sub.node:
                reads.extend(n for n in [*inner.input, *_subgraph_reads(inner)]
                             if n and n not in local)
                local.update(inner.output)
    return reads


def _fix_input_dims(graph: Any, concrete: dict[str, tuple[int, ...]]) -> None:
    for value in graph.input:
        if value.name not in concrete:
            continue
        dims = value.type.tensor_type.shape.dim
        for dim, size in zip(dims, concrete[value.name], strict=False):
            dim.Clear()
            dim.dim_value = size


def _inferred_shapes(model: Any) -> dict[str, tuple[tuple[int, ...], str]]:
    """Static shapes and dtypes of every value shape inference can resolve."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # custom domains or bad shapes: fall back to running the model
        inferred = model
    found = {}
    values = [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]
    for value in values:
        tensor_type = value.type.tensor_type
        if not tensor_type.HasField("shape") or not tensor_type.elem_type:
            continue
        dims = tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)).name
            found[value.name] = (tuple(int(d.dim_value) for d in dims), dtype)
    return found


def _run_for_shapes(path: Path, names: list[str], inputs: list[TensorSpec],
                    samples: list[np.ndarray]) -> dict[str, tuple[tuple[int, ...], str]]:
    """Shapes of ``names`` measured by running the model in onnxruntime on ``samples``."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))  # with external data, from beside the file
    known = {v.name for v in model.graph.output}
    for name in names:
        if name not in known:
            model.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    feeds = {spec.name: array for spec, array in zip(inputs, samples, strict=True)}
    with tempfile.TemporaryDirectory(prefix="edgepipe-inspect-") as folder:
        if model.ByteSize() < _PROTOBUF_LIMIT:
            source: Any = model.SerializeToString()
        else:  # protobuf cannot serialise 2 GiB: write the weights beside a copy
            source = str(Path(folder) / "model.onnx")
            onnx.save(model, source, save_as_external_data=True, location="model.onnx.data")
        session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        values = session.run(None, feeds)
    wanted = set(names)
    result = {}
    for meta, value in zip(session.get_outputs(), values, strict=True):
        if meta.name in wanted and isinstance(value, np.ndarray):
            result[meta.name] = (tuple(int(d) for d in value.shape), value.dtype.name)
    return result
