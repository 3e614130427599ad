"""OpenVINO backend: fp16 weights with ``openvino.save_model(compress_to_fp16=True)``.

Static int8 (NNCF post-training quantization of the float IR with the calibration
samples, ``nncf.quantize(ov_model, nncf.Dataset(...))``) belongs here too; it is not
written yet, and :mod:`edgepipe.compress.api` says so before any work starts.
"""

from __future__ import annotations

import warnings

from edgepipe.compress.base import Compressed, CompressJob
from edgepipe.compress.config import Fp16Config
from edgepipe.errors import UnsupportedError, first_line
from edgepipe.export.base import quiet_stdout
from edgepipe.runtime.openvino_runtime import import_openvino


def compress(job: CompressJob) -> Compressed:
    """Write ``job.path`` (.xml + .bin) from the float IR ``job.float_path``."""
    if not isinstance(job.config, Fp16Config):
        raise UnsupportedError(f"The OpenVINO backend has no method {job.config.method!r} yet.",
                               hint="use --format onnx for int8 now.",
                               reference="method-not-available")
    ov = import_openvino()
    try:
        with quiet_stdout("openvino"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
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
