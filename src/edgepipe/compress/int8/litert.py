"""LiteRT (TFLite) backend: fp16 weights with litert-torch's fp16 recipe.

litert-torch's ``full_fp16_recipe`` (ai-edge-quantizer's float casting) stores weights as
fp16 with DEQUANTIZE ops in front of the layers that use them; inputs, outputs and
arithmetic stay float32 (XNNPACK may run fp16 kernels on CPUs that have them). The recipe
is documented for litert-torch's generative API; edgepipe applies it to any torch model
and the parity check and metric say whether the result is right.

Static int8 uses litert-torch's PT2E quantizer: the torch model is captured with
``torch.export``, observers are inserted by ``prepare_pt2e`` with a per-channel symmetric
config, the calibration samples run through it, ``convert_pt2e`` makes the quantized graph
and litert-torch lowers it to a fully-int8 .tflite: int8 weights, activations, input and
output (edgepipe's LiteRT session quantizes float inputs and dequantizes outputs with the
model's own scale and zero point). Layers the quantizer does not annotate stay float and
are listed.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import numpy as np

from edgepipe.compress.base import Compressed, CompressJob
from edgepipe.compress.int8.config import Fp16Config, Int8StaticConfig
from edgepipe.errors import UnsupportedError, first_line
from edgepipe.export.base import quiet_tool
from edgepipe.progress import Counted


def compress(job: CompressJob) -> Compressed:
    """Write ``job.path`` (.tflite) from the torch model."""
    if not isinstance(job.config, (Fp16Config, Int8StaticConfig)):
        raise UnsupportedError(f"The LiteRT backend has no method {job.config.method!r}.",
                               hint="use int8 or fp16 for --format tflite.",
                               reference="method-not-available")
    if job.source.kind != "torch" or job.source.module is None:
        raise UnsupportedError(
            f"TFLite {job.config.method} needs a torch model: litert-torch converts torch "
            "models only.",
            hint="give the torch model as MODEL, or ask for --format onnx / openvino.",
            reference="tflite-from-onnx")
    if isinstance(job.config, Int8StaticConfig):
        return _int8(job, job.config)
    return _fp16(job)


def pt2e_calibrated(job: CompressJob, quantizer: Any, fmt: str, *,
                    fold_quantize: bool) -> tuple[Any, tuple[Any, ...], int]:
    """The torch model captured with ``torch.export``, observed by ``quantizer``
    (``prepare_pt2e``) on the calibration samples, and converted (``convert_pt2e``): the
    quantized GraphModule, the example arguments (one model batch) and the samples used."""
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    assert job.calibration is not None
    batch = job.source.inputs[0].shape[0] if job.source.inputs[0].rank else 1
    step = batch if isinstance(batch, int) else 1
    args = tuple(torch.from_numpy(np.ascontiguousarray(a[:step])) for a in job.calibration)
    count = len(job.calibration[0]) // step * step
    graph = torch.export.export(job.source.module.eval(), args).module()
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for start in Counted(range(0, count, step), f"calibration ({fmt})"):
            prepared(*[torch.from_numpy(np.ascontiguousarray(a[start:start + step]))
                       for a in job.calibration])
    quantized = convert_pt2e(prepared, fold_quantize=fold_quantize)
    # The graph was exported from an eval-mode module, so its ops are eval ops; the
    # GraphModule's own flag still says training, and converters warn on it.
    for module in quantized.modules():
        module.training = False
    return quantized, args, count


def _int8(job: CompressJob, config: Int8StaticConfig) -> Compressed:
    import litert_torch
    from litert_torch.quantize import pt2e_quantizer, quant_config

    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=config.per_channel))
    try:
        with quiet_tool("litert-torch"):
            quantized, args, count = pt2e_calibrated(job, quantizer, "tflite",
                                                     fold_quantize=False)
            converted = litert_torch.convert(
                quantized, args, quant_config=quant_config.QuantConfig(pt2e_quantizer=quantizer))
            converted.export(str(job.path))
    except Exception as exc:
        raise UnsupportedError(
            f"litert-torch's PT2E int8 quantization failed on this model: "
            f"{type(exc).__name__}: {first_line(exc)}",
            hint="use --format onnx or openvino for int8; --debug shows the traceback.",
            reference="quantization-failed") from exc
    tool = {"quantizer": "torchao prepare_pt2e/convert_pt2e with litert-torch's "
                         "PT2EQuantizer (symmetric)", "version": version("litert-torch"),
            "per_channel": config.per_channel, "calibration_samples": count,
            "calibration": "observer min/max (the ONNX Runtime calibration choices do not "
                           "apply)", "io": "int8 input and output"}
    return Compressed(job.path, [job.path], "int8", tool, left_in_float=_float_ops(job.path))


def _float_ops(path: Any) -> list[dict[str, str]]:
    """Compute ops of the .tflite that run in float (their weight tensor is not int8)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    left = []
    for op in interpreter._get_ops_details():
        if op["op_name"] not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
                                 "BATCH_MATMUL", "TRANSPOSE_CONV"):
            continue
        weight = tensors.get(op["inputs"][1]) if len(op["inputs"]) > 1 else None
        if weight is not None and np.dtype(weight["dtype"]).kind == "f":
            left.append({"layer": f"{op['op_name']} #{op['index']}", "op": op["op_name"],
                         "reason": "the PT2E quantizer left it in float"})
    return left


def _fp16(job: CompressJob) -> Compressed:
    import litert_torch
    import torch
    from litert_torch.generative.quantize import quant_recipes

    args = tuple(torch.from_numpy(a) for a in job.source.sample_inputs(1, job.config.seed))
    try:
        with quiet_tool("litert-torch"):
            converted = litert_torch.convert(job.source.module.eval(), args,
                                             quant_config=quant_recipes.full_fp16_recipe())
            converted.export(str(job.path))
    except Exception as exc:
        raise UnsupportedError(
            f"litert-torch's fp16 recipe failed on this model: {type(exc).__name__}: "
            f"{first_line(exc)}",
            hint="TFLite fp16 is not available for this model; use --format onnx or "
            "openvino for fp16. --debug shows the traceback.",
            reference="fp16-failed") from exc
    tool = {"converter": "litert_torch.convert(quant_config=full_fp16_recipe())",
            "version": version("litert-torch"),
            "note": "fp16 weights, DEQUANTIZE to float32 before use; float32 IO"}
    return Compressed(job.path, [job.path], "fp16", tool)
