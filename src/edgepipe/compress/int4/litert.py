"""LiteRT (TFLite) backend of int4-weight: Google's ai-edge-quantizer on the float .tflite.

ai-edge-quantizer 0.10 stores 4-bit weights in blocks (``BLOCKWISE_32`` ... ``_256``) only
in its dynamic-range recipe (``add_dynamic_config``): the weights are int4 blocks and
the FULLY_CONNECTED kernel quantizes its float activations on the fly (XNNPACK's
dynamically-quantized int4-blockwise kernels); nothing is calibrated and inputs, outputs
and the other ops stay float. Its weight-only recipe (explicit DEQUANTIZE) left the layers
untouched at a block granularity here (the file kept its float size), so it is not used.

Data-aware: the quantizer's GPTQ algorithm, with the Hessians collected by its calibrator
on the calibration samples. A layer the group size does not divide is kept in float
(``no_quantize`` for its output tensor), and with ``keep_8bit`` the output head gets int8
weights per output channel. The accuracy budget (``--max-drop``) keeps the most sensitive
layers in int8 the same way (:class:`Int4Layerwise`).
"""

from __future__ import annotations

import contextlib
import io
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.compress.base import Compressed, CompressJob
from edgepipe.compress.int4 import layers
from edgepipe.compress.int4.config import Int4WeightConfig
from edgepipe.compress.int4.tools import quantization_failed
from edgepipe.export.base import quiet_tool

_LAYER_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL")


def compress(job: CompressJob) -> Compressed:
    """Write ``job.path`` (.tflite with int4 blockwise weights) from the float .tflite."""
    return Int4Layerwise(job).quantize([], job.path)


def layerwise(job: CompressJob) -> Int4Layerwise:
    """The per-layer quantizer that sensitivity and the accuracy budget drive."""
    return Int4Layerwise(job)


class Int4Layerwise:
    """int4-weight of one float .tflite, again and again with different layers kept in 8
    bits: a kept layer's weights get the quantizer's int8 weight-only config (per output
    channel, dequantized to float for the product) instead of 4-bit blocks. Its dynamic-range
    int8 (activations quantized on the fly) was tried first: with all 35 MatMuls of
    all-MiniLM-L6-v2 in it the outputs were still 0.94 cosine points off float, so no budget
    under that could be met. Layers are named by their output tensor, as the quantizer's
    recipe scopes them."""

    precision, backup = "int4", "int8"

    def __init__(self, job: CompressJob) -> None:
        config = job.config
        assert isinstance(config, Int4WeightConfig)
        self.job, self.config, self.group = job, config, config.group_for("tflite")
        self.found = _layers(job.float_path)
        self.tables = _embeddings(job.float_path)
        self.layers = [(output, op) for output, op, k, _ in self.found if not k % self.group]
        self.nodes = [name for name, _ in self.layers]

    def quantize(self, kept: list[str], path: Path) -> Compressed:
        """Quantize with the layers named in ``kept`` in 8 bits instead of 4."""
        from ai_edge_quantizer import algorithm_manager, qtyping, quantizer

        job, config, group = self.job, self.config, self.group
        head = self.found[-1][0] if self.found and config.keep_8bit else None
        rows, plan = [], []
        for output, op, k, n in self.found:
            if k % group:
                rows.append(layers.kept(output, op, k, n, "float",
                                        layers.NOT_DIVISIBLE.format(k=k, g=group)))
                plan.append((output, None))
            elif output in kept:  # weight-only: the budget's backup must not lose much
                rows.append(layers.quantized(output, op, k, n, 8, None, layers.BUDGET_8BIT))
                plan.append((output, "weight-only"))
            elif output == head:
                rows.append(layers.quantized(output, op, k, n, 8, None, layers.HEAD_8BIT))
                plan.append((output, 8))
            else:
                rows.append(layers.quantized(output, op, k, n, 4, group))
        # embedding tables: the recipe's 4-bit blocks (the tool's default), int8 per row
        # with keep_8bit; outside the budget's ranking, as in ONNX Runtime
        for output, vocab, dim in self.tables:
            if config.keep_8bit:
                rows.append(layers.quantized(output, "EMBEDDING_LOOKUP", vocab, dim, 8, None,
                                             layers.EMBEDDING_8BIT))
                plan.append((output, 8))
            elif dim % group:
                rows.append(layers.kept(output, "EMBEDDING_LOOKUP", vocab, dim, "float",
                                        layers.NOT_DIVISIBLE.format(k=dim, g=group)))
                plan.append((output, None))
            else:
                rows.append(layers.quantized(output, "EMBEDDING_LOOKUP", vocab, dim, 4, group))
        names = algorithm_manager.AlgorithmName
        algorithm = names.GPTQ if config.data_aware else names.MIN_MAX_UNIFORM_QUANT
        ops = qtyping.TFLOperationName
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # its tqdm bars (calibration, transformations) are kept off stderr
            with quiet_tool("ai-edge-quantizer"), contextlib.redirect_stderr(io.StringIO()):
                tool_quantizer = quantizer.Quantizer(str(job.float_path))
                tool_quantizer.add_dynamic_config(
                    regex=".*", operation_name=ops.ALL_SUPPORTED, num_bits=4,
                    granularity=getattr(qtyping.QuantGranularity, f"BLOCKWISE_{group}"),
                    algorithm_key=algorithm)
                for output, bits in plan:
                    regex = f"^{re.escape(output)};$"  # the quantizer's scope: outputs, ";"
                    if bits is None:
                        tool_quantizer.update_quantization_recipe(
                            regex=regex, operation_name=ops.ALL_SUPPORTED,
                            algorithm_key=names.NO_QUANTIZE)
                    elif bits == "weight-only":
                        tool_quantizer.add_weight_only_config(
                            regex=regex, operation_name=ops.ALL_SUPPORTED, num_bits=8)
                    else:
                        tool_quantizer.add_dynamic_config(regex=regex,
                                                          operation_name=ops.ALL_SUPPORTED,
                                                          num_bits=bits)
                calibrated = None
                if config.data_aware:
                    assert job.calibration is not None
                    calibrated = tool_quantizer.calibrate(_calibration(job.float_path,
                                                                       job.calibration))
                result = tool_quantizer.quantize(calibrated, enable_progress_report=False)
            path.write_bytes(bytes(result.quantized_model))
        except Exception as exc:
            raise quantization_failed("ai-edge-quantizer", exc, "onnx / openvino") from exc
        integer = _integer_weights(path)
        for row in rows:
            if "bits" in row and row["layer"] not in integer:
                rows[rows.index(row)] = layers.kept(row["layer"], row["op"], row["in_features"],
                                                    row["out_features"], "float",
                                                    "ai-edge-quantizer left it in float")
        tool: dict[str, Any] = {
            "quantizer": "ai_edge_quantizer.Quantizer.add_dynamic_config (blockwise int4)",
            "version": version("ai-edge-quantizer"), "group_size": group,
            "algorithm": "GPTQ" if config.data_aware else "min-max round to nearest",
            "weights": f"int4 symmetric, blocks of {group} input features"
                       + ("; kept layers int8 per output channel, weight-only (float "
                          "products)" if kept else ""),
            "activations": "float at the model's edges; FULLY_CONNECTED quantizes them on "
                           "the fly (dynamic range)", "weight_layers": rows,
            "layer_counts": layers.summary(rows)}
        notes = []
        if not config.symmetric:
            notes.append("ai-edge-quantizer's blockwise int4 is symmetric; --asymmetric does "
                         "not apply to tflite and was not used")
        if config.data_aware and job.calibration is not None:
            tool["calibration_samples"] = len(job.calibration[0])
        return Compressed(path, [path], "int4", tool, layers.left_in_float(rows), notes)


def _layers(path: Path) -> list[tuple[str, str, int, int]]:
    """(output tensor, op, input features, output features) of each layer with a constant
    2-D weight, in graph order."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    found = []
    for op in interpreter._get_ops_details():
        inputs = [i for i in op["inputs"] if i >= 0]
        if op["op_name"] not in _LAYER_OPS or len(inputs) < 2:
            continue
        weight = tensors[inputs[1]]
        if len(weight["shape"]) != 2:
            continue
        n, k = (int(d) for d in weight["shape"])
        if op["op_name"] == "BATCH_MATMUL":
            k, n = n, k
        found.append((tensors[op["outputs"][0]]["name"], op["op_name"], k, n))
    return found


def _embeddings(path: Path) -> list[tuple[str, int, int]]:
    """(output tensor, rows, row width) of each EMBEDDING_LOOKUP with a constant 2-D table."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    found = []
    for op in interpreter._get_ops_details():
        inputs = [i for i in op["inputs"] if i >= 0]
        if op["op_name"] != "EMBEDDING_LOOKUP" or len(inputs) < 2:
            continue
        table = tensors[inputs[1]]
        if len(table["shape"]) == 2:
            vocab, dim = (int(d) for d in table["shape"])
            found.append((tensors[op["outputs"][0]]["name"], vocab, dim))
    return found


def _integer_weights(path: Path) -> set[str]:
    """The output tensors of the layers whose weight is stored as integers (read directly,
    or through a DEQUANTIZE)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    # weight-only layers read their weight through a DEQUANTIZE of the stored integers
    dequantized = {op["outputs"][0]: op["inputs"][0] for op in ops
                   if op["op_name"] == "DEQUANTIZE" and op["inputs"] and op["outputs"]}
    names = set()
    for op in ops:
        inputs = [i for i in op["inputs"] if i >= 0]
        if op["op_name"] not in (*_LAYER_OPS, "EMBEDDING_LOOKUP") or len(inputs) < 2:
            continue
        stored = dequantized.get(inputs[1], inputs[1])
        if np.dtype(tensors[stored]["dtype"]).kind == "i":
            names.add(tensors[op["outputs"][0]]["name"])
    return names


def _calibration(path: Path, arrays: list[np.ndarray]) -> dict[str, list[dict[str, Any]]]:
    """The calibration samples as the quantizer takes them: per signature, one dict of
    named inputs per run, in batches of the float model's own batch (a short tail dropped).
    The signature's names are put in the model's input order by their tensor indices, and
    each array is cast to its input's dtype (LiteRT narrows int64 token ids to int32)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    key = next(iter(interpreter.get_signature_list()))
    named = interpreter.get_signature_runner(key).get_input_details()
    order = [d["index"] for d in interpreter.get_input_details()]
    names = sorted(named, key=lambda name: order.index(named[name]["index"]))
    shape = interpreter.get_input_details()[0]["shape"]
    batch = int(shape[0]) if len(shape) and shape[0] > 0 else 1
    count = len(arrays[0]) // batch * batch
    return {key: [{name: np.ascontiguousarray(a[start:start + batch], dtype=named[name]["dtype"])
                   for name, a in zip(names, arrays, strict=True)}
                  for start in range(0, count, batch)]}
