"""ONNX backend of int4-weight: ONNX Runtime's ``MatMulNBitsQuantizer``.

The quantizer rewrites ``MatMul`` nodes with a constant weight into ``MatMulNBits``
(com.microsoft), whose weights are packed 4-bit blocks along the input features with one
scale (and, asymmetric, one zero point) per block. It does not read ``Gemm``, which the
float export writes for a Linear layer on 2-D inputs, so those are first rewritten here as
``MatMul`` (+ ``Add`` for the bias) with the weight transposed: the same arithmetic.

Data-free: round-to-nearest (``DefaultWeightOnlyQuantConfig``). Data-aware: GPTQ
(``GPTQWeightOnlyQuantConfig``, ONNX Runtime's bundled copy of Intel Neural Compressor's)
on the calibration samples. A layer the group size does not divide, and the output head
with ``keep_8bit``, are hidden from the 4-bit pass (GPTQ takes no exclusion list: its
weight is routed through an ``Identity``, which the quantizer skips as not constant and
ONNX Runtime folds away at load); the head then gets an 8-bit ``MatMulNBits`` pass.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import numpy as np

from edgepipe.compress.base import Compressed, CompressJob
from edgepipe.compress.int4 import layers
from edgepipe.compress.int4.config import Int4WeightConfig
from edgepipe.compress.int4.tools import quantization_failed, quiet_logger
from edgepipe.compress.int8.ort import _graph_inputs, _quiet, _Reader

_HIDDEN = "_edgepipe_int4_hidden"


def compress(job: CompressJob) -> Compressed:
    """Write ``job.path`` (.onnx with MatMulNBits nodes) from the float ONNX artifact."""
    import onnx
    from onnx import numpy_helper

    config = job.config
    assert isinstance(config, Int4WeightConfig)
    group = config.group_for("onnx")
    model = onnx.load(str(job.float_path))
    rewritten = _gemm_to_matmul(model)
    weights = {i.name: i for i in model.graph.initializer}
    candidates = [(n, numpy_helper.to_array(weights[n.input[1]]).shape)
                  for n in model.graph.node if n.op_type == "MatMul" and len(n.input) > 1
                  and n.input[1] in weights and len(weights[n.input[1]].dims) == 2]
    head = candidates[-1][0].name if candidates and config.keep_8bit else None
    rows, hidden, eight = [], [], []
    for node, (k, n) in candidates:
        if k % group:
            rows.append(layers.kept(node.name, "MatMul", k, n, "float",
                                    layers.NOT_DIVISIBLE.format(k=k, g=group)))
            hidden.append(node)
        elif node.name == head:
            rows.append(layers.quantized(node.name, "MatMul", k, n, 8, group))
            hidden.append(node)
            eight.append(node.name)
        else:
            rows.append(layers.quantized(node.name, "MatMul", k, n, 4, group))
    _hide(model, hidden)
    try:
        with _quiet(), quiet_logger("onnxruntime.quantization.matmul_nbits_quantizer"):
            model = _quantize(model, job, config, group, 4, None)
            if eight:
                _unhide(model, eight)
                model = _quantize(model, job, config, group, 8, eight)
            _unhide(model, None)
            onnx.save_model(model, str(job.path))
    except Exception as exc:
        raise quantization_failed("ONNX Runtime's MatMulNBitsQuantizer", exc, "openvino") from exc
    nbits = sum(n.op_type == "MatMulNBits" for n in onnx.load(str(job.path)).graph.node)
    tool: dict[str, Any] = {
        "quantizer": "onnxruntime.quantization.matmul_nbits_quantizer.MatMulNBitsQuantizer",
        "version": version("onnxruntime"),
        "algorithm": "GPTQ" if config.data_aware else "round to nearest (DEFAULT)",
        "weights": f"int4 {'symmetric' if config.symmetric else 'asymmetric'}, "
                   f"blocks of {group} input features", "group_size": group,
        "activations": "float", "matmulnbits_nodes": nbits,
        "gemm_rewritten_as_matmul": rewritten, "weight_layers": rows,
        "layer_counts": layers.summary(rows)}
    if config.data_aware and job.calibration is not None:
        tool["calibration_samples"] = len(job.calibration[0])
    return Compressed(job.path, [job.path], "int4", tool, layers.left_in_float(rows))


def _quantize(model: Any, job: CompressJob, config: Int4WeightConfig, group: int, bits: int,
              only: list[str] | None) -> Any:
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        GPTQWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    if config.data_aware and bits == 4:
        assert job.calibration is not None
        names, batch = _graph_inputs(job.float_path)
        reader = _Iterable(names, job.calibration, batch)
        algo: Any = GPTQWeightOnlyQuantConfig(calibration_data_reader=reader,
                                              block_size=group)
    else:
        algo = DefaultWeightOnlyQuantConfig(block_size=group, is_symmetric=config.symmetric,
                                            bits=bits)
    quantizer = MatMulNBitsQuantizer(model, bits=bits, block_size=group,
                                     is_symmetric=config.symmetric, nodes_to_include=only,
                                     algo_config=algo)
    quantizer.process()
    return quantizer.model.model


class _Iterable(_Reader):
    """The calibration reader as the GPTQ path reads it: iterated (and deep-copied)."""

    def __iter__(self) -> _Iterable:
        self.rewind()
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item

    def __deepcopy__(self, memo: dict[int, Any]) -> _Iterable:
        return _Iterable(self.names, self.arrays, self.fixed)


def _hide(model: Any, nodes: list[Any]) -> None:
    """Route each node's weight through an Identity, so the quantizer passes it by."""
    from onnx import helper

    for node in nodes:
        weight = node.input[1]
        hidden = f"{weight}{_HIDDEN}{node.name}"
        index = list(model.graph.node).index(node)
        model.graph.node.insert(index, helper.make_node(
            "Identity", [weight], [hidden], name=f"{node.name}{_HIDDEN}"))
        node.input[1] = hidden


def _unhide(model: Any, names: list[str] | None) -> None:
    """Undo :func:`_hide` for the nodes named (None: every one left)."""
    graph = model.graph
    for identity in [n for n in graph.node if n.name.endswith(_HIDDEN)]:
        owner = identity.name[:-len(_HIDDEN)]
        if names is not None and owner not in names:
            continue
        for node in graph.node:
            for i, name in enumerate(node.input):
                if name == identity.output[0]:
                    node.input[i] = identity.input[0]
        graph.node.remove(identity)


def _gemm_to_matmul(model: Any) -> int:
    """Rewrite each Gemm with a constant 2-D weight (alpha 1, transA 0) as MatMul (+ Add);
    returns how many were rewritten."""
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    count = 0
    for node in list(graph.node):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type != "Gemm" or node.input[1] not in weights
                or attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0):
            continue
        w = numpy_helper.to_array(weights[node.input[1]])
        w = np.ascontiguousarray(w.T if attrs.get("transB", 0) else w)
        name = f"{node.input[1]}_kn"
        graph.initializer.append(numpy_helper.from_array(w, name))
        index = list(graph.node).index(node)
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        product = f"{node.output[0]}_matmul" if bias else node.output[0]
        new = [helper.make_node("MatMul", [node.input[0], name], [product], name=node.name)]
        if bias:
            beta = attrs.get("beta", 1.0)
            if beta != 1.0:
                scaled = numpy_helper.to_array(weights[bias]) * beta
                bias = f"{bias}_beta"
                graph.initializer.append(numpy_helper.from_array(scaled.astype(np.float32),
                                                                 bias))
            new.append(helper.make_node("Add", [product, bias], [node.output[0]],
                                        name=f"{node.name}_bias"))
        graph.node.remove(node)
        for offset, item in enumerate(new):
            graph.node.insert(index + offset, item)
        count += 1
    used = {i for n in graph.node for i in n.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    return count
