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
ONNX Runtime folds away at load); the head, and the layers the accuracy budget keeps back
(:class:`Int4Layerwise`), then get an 8-bit ``MatMulNBits`` pass. Every MatMulNBits node
runs at ``accuracy_level`` 4 (int8 products).

Embedding tables (``Gather`` from a constant table) stay float, as ONNX Runtime's quantizer
leaves them; ``keep_8bit`` stores them as int8 rows with a scale each (standard ONNX
``Gather``/``Cast``/``Mul``; the quantizer's own Gather path is 4-bit only) and
``keep_8bit=False`` (``--all-4bit``) as 4-bit blocks (``GatherBlockQuantized``).
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.compress.base import Compressed, CompressJob
from edgepipe.compress.int4 import layers
from edgepipe.compress.int4.config import Int4WeightConfig
from edgepipe.compress.int4.tools import quantization_failed, quiet_logger
from edgepipe.compress.int8.ort import _graph_inputs, _quiet, _Reader

_HIDDEN = "_edgepipe_int4_hidden"
# MatMulNBits' accuracy_level 4: the activations are quantized to int8 on the fly, per block,
# and the product runs on int8 kernels. On an AVX2 CPU it made 8-bit MatMulNBits 1.7x faster
# on MiniLM (35.8 -> 20.5 ms at 1 x 128) and changed the min cosine by under 0.001.
ACCURACY_LEVEL = 4
ACTIVATIONS = "quantized to int8 on the fly per block (MatMulNBits accuracy_level 4)"


def compress(job: CompressJob) -> Compressed:
    """Write ``job.path`` (.onnx with MatMulNBits nodes) from the float ONNX artifact."""
    return Int4Layerwise(job).quantize([], job.path)


def layerwise(job: CompressJob) -> Int4Layerwise:
    """The per-layer quantizer that sensitivity and the accuracy budget drive."""
    return Int4Layerwise(job)


class Int4Layerwise:
    """int4-weight of one float model, again and again with different layers kept in 8 bits.

    The float model is read (and its Gemms rewritten) once; each :meth:`quantize` copies it.
    ``layers`` are the MatMuls that get 4 bits by default (the group size divides their input
    features; not the head that ``keep_8bit`` keeps in 8 bits).
    """

    precision, backup = "int4", "int8"

    def __init__(self, job: CompressJob) -> None:
        import onnx
        from onnx import numpy_helper

        config = job.config
        assert isinstance(config, Int4WeightConfig)
        self.job, self.config, self.group = job, config, config.group_for("onnx")
        self.model = onnx.load(str(job.float_path))
        self.rewritten = _gemm_to_matmul(self.model)
        weights = {i.name: i for i in self.model.graph.initializer}
        self.candidates = [(n.name, numpy_helper.to_array(weights[n.input[1]]).shape)
                           for n in self.model.graph.node
                           if n.op_type == "MatMul" and len(n.input) > 1
                           and n.input[1] in weights and len(weights[n.input[1]].dims) == 2]
        self.head = self.candidates[-1][0] if self.candidates and config.keep_8bit else None
        self.layers = [(name, "MatMul") for name, (k, _) in self.candidates
                       if not k % self.group and name != self.head]
        self.nodes = [name for name, _ in self.layers]

    def quantize(self, kept: list[str], path: Path) -> Compressed:
        """Quantize with the MatMuls named in ``kept`` in 8 bits instead of 4."""
        import onnx

        config, group = self.config, self.group
        path.parent.mkdir(parents=True, exist_ok=True)
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        nodes = {n.name: n for n in model.graph.node}
        rows, hidden, eight = [], [], []
        for name, (k, n) in self.candidates:
            if k % group:
                rows.append(layers.kept(name, "MatMul", k, n, "float",
                                        layers.NOT_DIVISIBLE.format(k=k, g=group)))
                hidden.append(nodes[name])
            elif name == self.head or name in kept:
                reason = layers.HEAD_8BIT if name == self.head else layers.BUDGET_8BIT
                rows.append(layers.quantized(name, "MatMul", k, n, 8, group, reason))
                hidden.append(nodes[name])
                eight.append(name)
            else:
                rows.append(layers.quantized(name, "MatMul", k, n, 4, group))
        _hide(model, hidden)
        try:
            with _quiet(), quiet_logger("onnxruntime.quantization.matmul_nbits_quantizer"):
                model = _quantize(model, self.job, config, group, 4)
                if eight:
                    _unhide(model, eight)
                    model = _quantize(model, self.job, config, group, 8)
                _unhide(model, None)
                rows += _embeddings(model, config, group)
                onnx.save_model(model, str(path))
        except Exception as exc:
            raise quantization_failed("ONNX Runtime's MatMulNBitsQuantizer", exc,
                                      "openvino") from exc
        nbits = sum(n.op_type == "MatMulNBits" for n in onnx.load(str(path)).graph.node)
        tool: dict[str, Any] = {
            "quantizer": "onnxruntime.quantization.matmul_nbits_quantizer.MatMulNBitsQuantizer",
            "version": version("onnxruntime"),
            "algorithm": "GPTQ" if config.data_aware else "round to nearest (DEFAULT)",
            "weights": f"int4 {'symmetric' if config.symmetric else 'asymmetric'}, "
                       f"blocks of {group} input features", "group_size": group,
            "activations": ACTIVATIONS, "accuracy_level": ACCURACY_LEVEL,
            "matmulnbits_nodes": nbits, "gemm_rewritten_as_matmul": self.rewritten,
            "weight_layers": rows, "layer_counts": layers.summary(rows)}
        if config.data_aware and self.job.calibration is not None:
            tool["calibration_samples"] = len(self.job.calibration[0])
        return Compressed(path, [path], "int4", tool, layers.left_in_float(rows))


def _quantize(model: Any, job: CompressJob, config: Int4WeightConfig, group: int,
              bits: int) -> Any:
    """One MatMulNBits pass over every MatMul with a constant weight still in sight."""
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
                                            bits=bits, accuracy_level=ACCURACY_LEVEL)
    quantizer = MatMulNBitsQuantizer(model, bits=bits, block_size=group,
                                     is_symmetric=config.symmetric,
                                     accuracy_level=ACCURACY_LEVEL, algo_config=algo)
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


def _embeddings(model: Any, config: Int4WeightConfig, group: int) -> list[dict[str, Any]]:
    """The embedding tables (Gathers from a constant 2-D float table): float by default (ONNX
    Runtime's default), 8 bits per row with ``keep_8bit``, 4 bits in blocks of ``group``
    along the row (``GatherBlockQuantized``) with ``keep_8bit=False``."""
    from onnx import TensorProto

    weights = {i.name: i for i in model.graph.initializer}
    tables = [n for n in model.graph.node if n.op_type == "Gather" and n.input[0] in weights
              and len(weights[n.input[0]].dims) == 2
              and weights[n.input[0]].data_type == TensorProto.FLOAT]
    rows: list[dict[str, Any]] = []
    four = []
    for node in tables:
        v, d = weights[node.input[0]].dims
        if config.keep_8bit is None:
            rows.append(layers.kept(node.name, "Gather", v, d, "float", layers.EMBEDDING_FLOAT))
        elif config.keep_8bit:
            _gather_8bit(model, node)
            rows.append(layers.quantized(node.name, "Gather", v, d, 8, None,
                                         layers.EMBEDDING_8BIT))
        elif d % group:
            rows.append(layers.kept(node.name, "Gather", v, d, "float",
                                    layers.NOT_DIVISIBLE.format(k=d, g=group)))
        else:
            rows.append(layers.quantized(node.name, "Gather", v, d, 4, group))
            four.append(node.name)
    if four:
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )

        algo = DefaultWeightOnlyQuantConfig(block_size=group, is_symmetric=config.symmetric,
                                            bits=4, op_types_to_quantize=("Gather",))
        quantizer = MatMulNBitsQuantizer(model, bits=4, block_size=group,
                                         is_symmetric=config.symmetric, algo_config=algo,
                                         nodes_to_exclude=[n.name for n in tables
                                                           if n.name not in four])
        quantizer.process()
        model.CopyFrom(quantizer.model.model)
    return rows


def _gather_8bit(model: Any, node: Any) -> None:
    """Replace ``node``'s float table with int8 rows and one float scale per row: two
    Gathers (codes, scales), a Cast and a Mul, all standard ONNX."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    init = next(i for i in graph.initializer if i.name == node.input[0])
    table = numpy_helper.to_array(init).astype(np.float32)
    scale = np.abs(table).max(axis=1, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    codes = np.clip(np.rint(table / scale), -127, 127).astype(np.int8)
    base = f"{node.name}_int8"
    graph.initializer.extend([numpy_helper.from_array(codes, f"{base}_codes"),
                              numpy_helper.from_array(scale.astype(np.float32),
                                                      f"{base}_scales")])
    axis = [a for a in node.attribute if a.name == "axis"]
    index = list(graph.node).index(node)
    new = [helper.make_node("Gather", [f"{base}_codes", node.input[1]], [f"{base}_q"],
                            name=f"{base}_gather_codes", axis=axis[0].i if axis else 0),
           helper.make_node("Gather", [f"{base}_scales", node.input[1]], [f"{base}_s"],
                            name=f"{base}_gather_scales", axis=axis[0].i if axis else 0),
           helper.make_node("Cast", [f"{base}_q"], [f"{base}_f"], name=f"{base}_cast",
                            to=TensorProto.FLOAT),
           helper.make_node("Mul", [f"{base}_f", f"{base}_s"], list(node.output),
                            name=f"{base}_mul")]
    graph.node.remove(node)
    for offset, item in enumerate(new):
        graph.node.insert(index + offset, item)
    if not any(init.name in n.input for n in graph.node):
        graph.initializer.remove(init)
