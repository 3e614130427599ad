"""OpenVINO backend: static int8 with NNCF post-training quantization, fp16 weights with
``openvino.save_model(compress_to_fp16=True)``.

int8 reads the float IR the api exported and parity-checked, runs ``nncf.quantize`` with
the calibration samples (NNCF's own range estimators and fast bias correction; ONNX
Runtime's ``--calibration`` choices do not apply and the record says so), and saves an IR
whose weights are stored as int8 with FakeQuantize ops that the CPU plugin runs as int8
kernels.
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
from edgepipe.runtime.openvino_runtime import import_openvino

# Ops that carry weights: the layers worth listing when NNCF leaves them in float.
COMPUTE_OPS = {"Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul"}
# Ops between a quantizer (or an int8 weight constant) and the layer that uses it.
_PASS_THROUGH = {"Convert", "Reshape", "Transpose", "Multiply", "Subtract", "MaxPool",
                 "AvgPool", "Squeeze", "Unsqueeze"}
_INT_TYPES = {"i8", "u8", "i4", "u4"}


def compress(job: CompressJob) -> Compressed:
    """Write ``job.path`` (.xml + .bin) from the float IR ``job.float_path``."""
    if isinstance(job.config, Int8StaticConfig):
        return _int8(job, job.config)
    if isinstance(job.config, Fp16Config):
        return _fp16(job)
    raise UnsupportedError(f"The OpenVINO backend has no method {job.config.method!r}.",
                           hint="use int8 or fp16 for --format openvino.",
                           reference="method-not-available")


def _int8(job: CompressJob, config: Int8StaticConfig) -> Compressed:
    ov = import_openvino()
    assert job.calibration is not None
    model = ov.Core().read_model(str(job.float_path))
    items = _calibration_items(model, job.calibration)
    try:
        import nncf

        with quiet_tool("nncf"):
            ignored = nncf.IgnoredScope(names=list(config.exclude)) if config.exclude else None
            quantized = nncf.quantize(model, nncf.Dataset(Counted(items, "calibration (openvino)")), subset_size=len(items),
                                      **({"ignored_scope": ignored} if ignored else {}))
            ov.save_model(quantized, str(job.path), compress_to_fp16=False)
    except Exception as exc:
        raise UnsupportedError(
            f"NNCF could not quantize the model: {type(exc).__name__}: {first_line(exc)}",
            hint="keep the failing layer in float with --exclude NODE (OpenVINO op names), "
            "or use --format onnx; --debug shows the traceback.",
            reference="quantization-failed") from exc
    tool = {"quantizer": "nncf.quantize (post-training, OpenVINO backend)",
            "version": version("nncf"), "openvino": ov.get_version().split("-")[0],
            "calibration_samples": len(items),
            "calibration": "NNCF range estimators with fast bias correction (the ONNX "
                           "Runtime calibration choices do not apply)",
            "weights": "int8 per channel (symmetric)", "activations": "int8/uint8"}
    left = _float_layers(quantized, set(config.exclude))
    return Compressed(job.path, [job.path, job.path.with_suffix(".bin")], "int8", tool,
                      left_in_float=left)


def _calibration_items(model: Any, calibration: list[np.ndarray]) -> list[Any]:
    """Calibration samples in the IR's batch: one item per run, a list for several inputs."""
    first = model.inputs[0].get_partial_shape()
    batch = first[0].get_length() if first.rank.get_length() and first[0].is_static else 0
    count = len(calibration[0])
    step = batch or count
    items = []
    for start in range(0, count - step + 1, step):
        chunk = [np.ascontiguousarray(a[start:start + step]) for a in calibration]
        items.append(chunk[0] if len(chunk) == 1 else chunk)
    return items


def _float_layers(model: Any, excluded: set[str]) -> list[dict[str, str]]:
    """Compute ops none of whose inputs comes from a quantizer or an int8 weight constant."""
    left = []
    for op in model.get_ordered_ops():
        if op.get_type_name() not in COMPUTE_OPS:
            continue
        if not any(_quantized(op.input_value(i).get_node()) for i in range(op.get_input_size())):
            reason = "excluded by the user" if op.get_friendly_name() in excluded else \
                "NNCF left it in float"
            left.append({"layer": op.get_friendly_name(), "op": op.get_type_name(),
                         "reason": reason})
    return left


def _quantized(node: Any, depth: int = 0) -> bool:
    kind = node.get_type_name()
    if kind == "FakeQuantize":
        return True
    if kind == "Constant":
        return node.get_element_type().get_type_name() in _INT_TYPES
    if node.get_type_name() in _PASS_THROUGH and depth < 4:
        return any(_quantized(node.input_value(i).get_node(), depth + 1)
                   for i in range(node.get_input_size()))
    return False


def _fp16(job: CompressJob) -> Compressed:
    ov = import_openvino()
    try:
        with quiet_tool("openvino"):
            model = ov.Core().read_model(str(job.float_path))
            ov.save_model(model, str(job.path), compress_to_fp16=True)
    except Exception as exc:
        raise UnsupportedError(f"OpenVINO could not save the IR with fp16 weights: "
                               f"{type(exc).__name__}: {first_line(exc)}",
                               hint="try --format onnx; --debug shows the traceback.",
                               reference="fp16-failed") from exc
    tool = {"converter": "openvino.save_model(compress_to_fp16=True)",
            "version": ov.get_version().split("-")[0],
            "note": "weights stored as fp16; the CPU plugin computes in the inference "
                    "precision it is given (edgepipe's sessions ask for f32)"}
    return Compressed(job.path, [job.path, job.path.with_suffix(".bin")], "fp16", tool)
