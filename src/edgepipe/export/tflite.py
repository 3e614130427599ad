"""TFLite (LiteRT) export with litert-torch, no TensorFlow needed.

``--nhwc`` wraps the model with litert-torch's ``to_channel_last_io`` so that 4-D inputs
and outputs are channel-last in the artifact; the transposes the wrapper adds cancel the
converter's own, leaving no TRANSPOSE op at the model's edges (checked, and recorded).
"""

from __future__ import annotations

import logging
from importlib.metadata import version
from typing import Any

from edgepipe.export.base import (
    Exported,
    ExportJob,
    conversion_failed,
    log,
    quiet_tool,
    require_torch_source,
    to_channel_last,
)


def export(job: ExportJob) -> Exported:
    """Write ``job.path`` (.tflite) from a torch model."""
    require_torch_source(job.source, "TFLite", "litert-torch converts torch models, and edgepipe "
                         "does not ship an ONNX-to-TFLite converter.",
                         reference="tflite-from-onnx")
    # litert-torch's import registers an Enum with torch's pytree, which logs a deprecation
    # warning that is torch's business, not the user's.
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
    import litert_torch
    import torch

    module = job.source.module
    args = job.torch_args()
    channel_last_in: list[int] = []
    channel_last_out: list[int] = []
    if job.config.nhwc:
        channel_last_in = [i for i, a in enumerate(job.sample) if a.ndim == 4]
        channel_last_out = [i for i, a in enumerate(job.reference) if a.ndim == 4]
        if not channel_last_in and not channel_last_out:
            log.warning("--nhwc: the model has no 4-D input or output; the layout is unchanged.")
        module = litert_torch.to_channel_last_io(module, args=channel_last_in,
                                                 outputs=channel_last_out)
        args = tuple(torch.from_numpy(to_channel_last(a.numpy())) if i in channel_last_in else a
                     for i, a in enumerate(args))
    if job.dynamic_batch:
        log.warning("TFLite is exported with a fixed batch of %d: litert-torch's dynamic "
                    "shapes are not used by edgepipe yet.", job.sample[0].shape[0])
    for axis in job.source.dynamic_axes:
        log.info("TFLite: the %s axis is fixed at %d (the other formats keep it dynamic).",
                 axis.name, axis.size)
    try:
        with quiet_tool("litert-torch"):
            converted = litert_torch.convert(module.eval(), args)
            converted.export(str(job.path))
    except Exception as exc:
        raise conversion_failed(
            "litert-torch could not convert the model", exc,
            hint="LiteRT lowers torch.export's core ATen ops; rewrite the failing part of "
            "forward(), or export ONNX/OpenVINO instead. --debug shows the traceback.",
            reference="tflite-export-failed") from exc
    tool: dict[str, Any] = {"exporter": "litert-torch", "version": version("litert-torch"),
                            "nhwc": job.config.nhwc, "dynamic_batch": False}
    exported = Exported(job.path, [job.path], "fp32", tool, channel_last_in, channel_last_out)
    tool["edge_transposes"] = edge_transposes(job.path)
    if job.config.nhwc and tool["edge_transposes"]:
        log.warning("--nhwc: TRANSPOSE ops remain at %s.", ", ".join(tool["edge_transposes"]))
    return exported


def edge_transposes(path: Any) -> list[str]:
    """Inputs read by a TRANSPOSE op and outputs written by one, as ``input 0`` / ``output 0``."""
    from edgepipe.runtime.litert_runtime import LiteRTSession

    session = LiteRTSession(path, threads=1, delegate=False)
    inputs = session.input_indices
    outputs = session.output_indices
    found = []
    for op in session.op_details():
        if op.name != "TRANSPOSE":
            continue
        found += [f"input {inputs.index(i)}" for i in op.inputs if i in inputs]
        found += [f"output {outputs.index(o)}" for o in op.outputs if o in outputs]
    return found
