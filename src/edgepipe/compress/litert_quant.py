"""LiteRT (TFLite) backend: fp16 weights with litert-torch's fp16 recipe.

litert-torch's ``full_fp16_recipe`` (ai-edge-quantizer's float casting) stores weights as
fp16 with DEQUANTIZE ops in front of the layers that use them; inputs, outputs and
arithmetic stay float32 (XNNPACK may run fp16 kernels on CPUs that have them). The recipe
is documented for litert-torch's generative API; edgepipe applies it to any torch model
and the parity check and metric say whether the result is right.

Static int8 (litert-torch's PT2E quantizer: ``prepare_pt2e`` with a per-channel
symmetric config, calibration, ``convert_pt2e``) belongs here too; it is not written yet,
and :mod:`edgepipe.compress.api` says so before any work starts.
"""

from __future__ import annotations

import warnings
from importlib.metadata import version

from edgepipe.compress.base import Compressed, CompressJob
from edgepipe.compress.config import Fp16Config
from edgepipe.errors import UnsupportedError, first_line
from edgepipe.export.base import quiet_stdout


def compress(job: CompressJob) -> Compressed:
    """Write ``job.path`` (.tflite) from the torch model."""
    if not isinstance(job.config, Fp16Config):
        raise UnsupportedError(f"The LiteRT backend has no method {job.config.method!r} yet.",
                               hint="use --format onnx for int8 now.",
                               reference="method-not-available")
    if job.source.kind != "torch" or job.source.module is None:
        raise UnsupportedError(
            "TFLite fp16 needs a torch model: litert-torch converts torch models only.",
            hint="give the torch model as MODEL, or ask for --format onnx / openvino.",
            reference="tflite-from-onnx")
    import litert_torch
    import torch
    from litert_torch.generative.quantize import quant_recipes

    args = tuple(torch.from_numpy(a) for a in job.source.sample_inputs(1, job.config.seed))
    try:
        with quiet_stdout("litert-torch"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
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
