"""OpenVINO IR export (``.xml`` + ``.bin``) with ``openvino.convert_model``.

From the torch module (traced with the sample inputs), or from the ``.onnx`` file when the
source is ONNX. ``ov.save_model`` compresses weights to fp16 unless told not to; edgepipe
tells it, so an IR is fp32 unless ``--fp16`` asks for fp16 weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from edgepipe.export.base import Exported, ExportJob, conversion_failed, quiet_tool
from edgepipe.runtime.openvino_runtime import import_openvino


def export(job: ExportJob) -> Exported:
    """Write ``job.path`` (.xml, with its .bin beside it)."""
    ov = import_openvino()
    try:
        with quiet_tool("openvino"):
            if job.source.kind == "onnx":
                assert job.source.onnx_path is not None
                model = ov.convert_model(str(job.source.onnx_path))
            else:
                with _plain_attention():
                    model = ov.convert_model(job.source.module, example_input=job.torch_args(),
                                             **_input_shapes(job))
                _name_ports(model, job.input_names, job.output_names)
            ov.save_model(model, str(job.path), compress_to_fp16=job.config.fp16)
    except Exception as exc:
        raise conversion_failed(
            "OpenVINO could not convert the model", exc,
            hint="export ONNX first and convert that (edgepipe export MODEL.onnx --format "
            "openvino), or rewrite the failing part of forward(). --debug shows the traceback.",
            reference="openvino-export-failed") from exc
    tool: dict[str, Any] = {
        "exporter": "openvino.convert_model", "version": ov.get_version().split("-")[0],
        "from": "onnx file" if job.source.kind == "onnx" else "torch module",
        "compress_to_fp16": job.config.fp16,
    }
    files = [job.path, job.path.with_suffix(".bin")]
    return Exported(job.path, files, "fp16" if job.config.fp16 else "fp32", tool)


@contextlib.contextmanager
def _plain_attention() -> Iterator[None]:
    """Trace nn.MultiheadAttention / TransformerEncoder on their plain path: the inference
    fast path takes other branches from one call to the next, and convert_model's tracing
    check fails with "Graphs differed across invocations" (measured on a 2-layer
    nn.TransformerEncoder). Both paths compute the same."""
    import torch

    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


def _input_shapes(job: ExportJob) -> dict[str, Any]:
    """``input=`` for convert_model: the sample's shapes and dtypes, batch -1 when dynamic,
    each dynamic axis of the source (a text encoder's sequence) bounded 1..max.

    Without it the IR gets every dimension dynamic, which hides shape errors until run time.
    """
    ov = import_openvino()
    dynamic = job.dynamic_axis_names()
    bounds = {axis.name: axis.max for axis in job.source.dynamic_axes}
    specs = []
    for name, array in zip(job.input_names, job.sample, strict=True):
        named = dynamic.get(name, {})
        shape = [ov.Dimension(-1) if named.get(i) == "batch" else
                 ov.Dimension(1, bounds[named[i]]) if i in named else ov.Dimension(int(d))
                 for i, d in enumerate(array.shape)]
        specs.append((ov.PartialShape(shape), ov.Type(array.dtype)))
    return {"input": specs}


def _name_ports(model: Any, inputs: list[str], outputs: list[str]) -> None:
    """Give the IR's inputs and outputs the names the other formats use."""
    for port, name in zip(model.inputs, inputs, strict=False):
        port.get_tensor().set_names({name})
    for port, name in zip(model.outputs, outputs, strict=False):
        port.get_tensor().set_names({name})
