"""ONNX backend of the low-bit methods (wNaM): Brevitas quantization, exported as QCDQ.

The torch model is copied; BatchNorm that directly follows a convolution is folded into it
(as a deployed model would be); every Conv1d / Conv2d / Linear becomes the Brevitas layer
of the same shape carrying the float weights, with per-channel float-scaled weights at
``weight_bits`` and a per-tensor activation quantizer at ``act_bits`` on its input. The
quantized model is calibrated on the calibration split (``calibration_mode``, then
``bias_correction_mode``), optionally fine-tuned with distillation
(:mod:`edgepipe.compress.distill`), and written with ``export_onnx_qcdq``.

QCDQ stores every quantized weight as an int8 initializer followed by a Clip to its bit
width: a 4- or 2-bit model takes as many bytes on disk as an 8-bit one. The record says so
and adds the packed size the weights would take at their bit width, labelled as computed.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from importlib.metadata import version
from typing import Any

import numpy as np
import torch
from torch import nn

from edgepipe.compress.base import Compressed, CompressJob, torch_module
from edgepipe.compress.distill import fine_tune
from edgepipe.compress.folding import fold_batchnorm
from edgepipe.compress.lowbit.config import LowBitConfig
from edgepipe.compress.lowbit.sizes import PackedSizes
from edgepipe.errors import InputError, UnsupportedError, first_line
from edgepipe.export.base import log

OPSET = 13  # Brevitas' QCDQ default: int8 QuantizeLinear / DequantizeLinear and Clip
CALIB_BATCH = 32
_SUPPORTED = (nn.Conv1d, nn.Conv2d, nn.Linear)
# Layers with weights this backend leaves in float (listed in the record, not an error).
_WEIGHTED = (nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
             nn.Embedding, nn.LSTM, nn.GRU, nn.RNN, nn.MultiheadAttention)
# Compute ops of ONNX Runtime's integer kernels (what a QDQ graph becomes when it fuses).
INTEGER_OPS = {"QLinearConv", "QLinearMatMul", "MatMulInteger", "ConvInteger",
                "MatMulIntegerToFloat", "QGemm", "DynamicQuantizeMatMul"}
RUNTIME_COMPUTE_OPS = INTEGER_OPS | {"Conv", "FusedConv", "Gemm", "FusedGemm", "MatMul",
                               "FusedMatMul", "NchwcConv"}
STORAGE_NOTE = (
    "ONNX QCDQ stores each quantized weight tensor as int8 (one byte per weight) with a Clip "
    "to its bit width; below 8 bits the file is therefore no smaller than at 8 bits. "
    "packed_bytes_computed is what the weights would take packed at their bit width; it is "
    "computed, not a file size.")


def compress(job: CompressJob) -> Compressed:
    """Quantize ``job.source.module`` with Brevitas and write ``job.path`` (ONNX QCDQ)."""
    config = job.config
    assert isinstance(config, LowBitConfig)
    module = _check_job(job, config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # brevitas warns on import about optional kernels
        from brevitas.graph.calibrate import bias_correction_mode, calibration_mode
    torch.manual_seed(config.seed)
    student, layers, left = quantize_module(module, config)
    assert job.data is not None
    calib = job.data.calib.subset(np.arange(min(config.calib_size, len(job.data.calib))))
    arrays = [torch.from_numpy(np.ascontiguousarray(a)) for a in calib.inputs.values()]
    tool: dict[str, Any] = {"quantizer": "brevitas", "version": version("brevitas"),
                            "format": "QCDQ", "opset": OPSET,
                            "weights": f"int{config.weight_bits} (first and last layers: "
                            f"int{config.first_last_bits or config.weight_bits}), symmetric, "
                            "per channel (float scales)",
                            "activations": f"int{config.act_bits}, per tensor (float scale)",
                            "layers": layers, "bn_folded": _folded(module, student)}
    started = time.perf_counter()
    student.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with calibration_mode(student):
            _run(student, arrays)
        if config.bias_correction:
            with bias_correction_mode(student):
                _run(student, arrays)
    tool["calibration"] = {"samples": len(calib), "source": "calibration split (from train)",
                           "bias_correction": config.bias_correction,
                           "seconds": round(time.perf_counter() - started, 3)}
    notes = [STORAGE_NOTE]
    if config.qat:
        tool["qat"] = fine_tune(student, module, job, config.method, notes, "QAT",
                                "trained by distillation from the float model only (no "
                                "cross-entropy).")
    export_qcdq(student, job, arrays)
    tool["sizes"] = sizes(student, job.path).to_dict()
    tool["runtime_compute_ops"] = runtime_compute_ops(job.path)
    if not set(tool["runtime_compute_ops"]) & INTEGER_OPS:
        notes.append("ONNX Runtime runs this graph with float kernels on dequantized values "
                      f"(after its graph optimisations the compute ops are "
                      f"{', '.join(tool['runtime_compute_ops'])}, no integer kernel): the "
                      "accuracy is that of the quantized model, the speed is not int8's.")
    return Compressed(job.path, [job.path], config.method, tool, left, notes)


def _check_job(job: CompressJob, config: LowBitConfig) -> Any:
    module = torch_module(job, "quantizes", "; or use --method int8 on the ONNX file")
    if job.data is None or not len(job.data.calib):
        raise InputError(
            f"--method {config.method} needs calibration data, and none was given.",
            hint="give --data (a .npz, an image folder or builtin:digits) with samples like "
            "the model's real inputs.", reference="calibration-data-missing")
    if config.qat and not len(job.data.train):
        raise InputError("QAT needs training samples; the data's train split is empty.",
                         hint="give more data, or drop --qat for post-training quantization.",
                         reference="training-data-missing")
    return module


def quantize_module(module: Any, config: LowBitConfig) -> tuple[Any, list[dict[str, Any]],
                                                                list[dict[str, str]]]:
    """A copy of ``module`` with Brevitas layers; the quantized layers and those left float.

    The first and last compute layers (in module order) take ``first_last_bits``.
    """
    student = copy.deepcopy(module).eval()
    fold_batchnorm(student)
    names = [n for n, m in student.named_modules() if isinstance(m, _SUPPORTED)]
    edges = {names[0], names[-1]} if names and config.first_last_bits is not None else set()
    layers, left = [], []
    for name, child in list(student.named_modules()):
        if isinstance(child, _SUPPORTED):
            bits = config.first_last_bits if name in edges else config.weight_bits
            set_module(student, name, quant_layer(child, bits, config.act_bits))
            layers.append({"layer": name, "op": type(child).__name__, "weight_bits": bits,
                           "act_bits": config.act_bits, "weights": child.weight.numel()})
        elif isinstance(child, _WEIGHTED):
            left.append({"layer": name, "op": type(child).__name__,
                         "reason": "the low-bit backend quantizes Conv1d, Conv2d and Linear "
                         "only"})
    if not layers:
        raise UnsupportedError("The model has no Conv1d, Conv2d or Linear layer to quantize.",
                               hint="use --method int8 or fp16 for this model.",
                               reference="nothing-to-quantize")
    return student, layers, left


def quant_layer(layer: Any, bits: int, act_bits: int) -> Any:
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerChannelFloat

    common = {"bias": layer.bias is not None, "weight_quant": Int8WeightPerChannelFloat,
              "weight_bit_width": bits, "input_quant": Int8ActPerTensorFloat,
              "input_bit_width": act_bits, "return_quant_tensor": False}
    if isinstance(layer, nn.Linear):
        new = qnn.QuantLinear(layer.in_features, layer.out_features, **common)
    else:
        kind = qnn.QuantConv2d if isinstance(layer, nn.Conv2d) else qnn.QuantConv1d
        new = kind(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                   layer.padding, layer.dilation, layer.groups,
                   padding_mode=layer.padding_mode, **common)
    new.weight.data.copy_(layer.weight.data)
    if layer.bias is not None:
        new.bias.data.copy_(layer.bias.data)
    return new


def _folded(before: Any, after: Any) -> int:
    def count(model: Any) -> int:
        return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())

    return count(before) - count(after)


def set_module(root: Any, dotted: str, module: Any) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def _run(model: Any, arrays: list[Any]) -> None:
    for start in range(0, len(arrays[0]), CALIB_BATCH):
        model(*[a[start:start + CALIB_BATCH] for a in arrays])


def export_qcdq(student: Any, job: CompressJob, arrays: list[Any]) -> None:
    import onnx
    from brevitas.export import export_onnx_qcdq

    graph = onnx.load(str(job.float_path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    dynamic = {v.name: {0: v.type.tensor_type.shape.dim[0].dim_param or "batch"}
               for v in [*inputs, *graph.output]
               if v.type.tensor_type.shape.dim and not v.type.tensor_type.shape.dim[0].dim_value}
    sample = tuple(a[:1] for a in arrays)
    student.eval()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    # The fused transformer / attention kernels of inference have no ONNX form in the
    # TorchScript exporter: export the plain path, which computes the same.
    torch.backends.mha.set_fastpath_enabled(False)
    # attention exports as scaled_dot_product_attention, which needs opset 14
    opset = max(OPSET, 14) if any(isinstance(m, torch.nn.MultiheadAttention)
                                  for m in student.modules()) else OPSET
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx_qcdq(student, args=sample, export_path=str(job.path),
                             input_names=[v.name for v in inputs],
                             output_names=[v.name for v in graph.output],
                             dynamic_axes=dynamic or None, opset_version=opset, dynamo=False,
                             keep_initializers_as_inputs=False)
    except Exception as exc:
        raise UnsupportedError(
            f"Brevitas could not export the quantized model to ONNX QCDQ: "
            f"{type(exc).__name__}: {first_line(exc)}",
            hint="--debug shows the traceback; a layer Brevitas' exporter cannot handle "
            "would need to stay float.", reference="quantization-failed") from exc
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    log.info("Exported %s (%d bytes)", job.path.name, job.path.stat().st_size)


def packed_bytes(student: Any) -> tuple[int, int]:
    """(packed, int8): the bytes of the quantized layers at their bit width, and at 8 bits.

    Per layer: ceil(bits x weights / 8), plus 4 bytes (float32) for each output channel's
    scale, each bias value and the input activation's scale. Computed, not measured.
    """
    packed = int8 = 0
    for module in student.modules():
        if not (hasattr(module, "quant_weight") and isinstance(module, _SUPPORTED)):
            continue
        weights = module.weight.numel()
        biases = 0 if module.bias is None else module.bias.numel()
        extra = 4 * (module.weight.shape[0] + biases + 1)
        bits = int(module.quant_weight().bit_width.item())
        packed += math.ceil(bits * weights / 8) + extra
        int8 += weights + extra
    return packed, int8


def sizes(student: Any, path: Any) -> PackedSizes:
    """Bytes on disk and int8 weight bytes in the file (measured) beside the packed size."""
    import onnx
    from onnx import TensorProto

    packed, int8 = packed_bytes(student)
    graph = onnx.load(str(path)).graph
    stored = sum(int(np.prod(i.dims)) for i in graph.initializer
                 if i.data_type == TensorProto.INT8 and len(i.dims) > 1)
    return PackedSizes(path.stat().st_size, stored, packed, int8)


def runtime_compute_ops(path: Any) -> list[str]:
    """The compute op types of ``path`` after ONNX Runtime's graph optimisations (measured)."""
    import onnx
    import onnxruntime as ort

    optimized = path.with_name(path.stem + ".ort-optimized.onnx")
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(optimized)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.log_severity_level = 3
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    nodes = onnx.load(str(optimized)).graph.node
    optimized.unlink()
    return sorted({n.op_type for n in nodes if n.op_type in RUNTIME_COMPUTE_OPS})
