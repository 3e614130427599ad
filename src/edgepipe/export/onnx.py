"""ONNX export: torch's dynamo exporter, the TorchScript exporter as a stated fallback.

A model is saved as one self-contained ``.onnx`` file unless its weights pass
:data:`EXTERNAL_DATA_THRESHOLD` (protobuf cannot hold a message over 2 GiB); then they go
to ``NAME.onnx.data`` beside it. ``onnx.checker`` must pass. ``--simplify`` runs onnxslim
and keeps its result only when ONNX Runtime gives the same outputs as before.
"""

from __future__ import annotations

import os
from importlib.metadata import version
from pathlib import Path
from typing import Any

from edgepipe.errors import UnsupportedError, first_line, root_cause
from edgepipe.export.base import (
    Exported,
    ExportJob,
    conversion_failed,
    log,
    quiet_tool,
)

# Weights above this go to external data; below it the file stays self-contained.
# (2 GiB is protobuf's limit; the margin leaves room for the graph itself.)
EXTERNAL_DATA_THRESHOLD = 1_800_000_000


def export(job: ExportJob) -> Exported:
    """Write ``job.path`` (.onnx) from a torch model, or re-save an ONNX source."""
    tool = _resave_onnx(job) if job.source.kind == "onnx" else _export_torch(job)
    _check(job.path)
    if job.config.simplify:
        tool["simplify"] = _simplify(job)
    files = [job.path] + _external_files(job.path)
    tool["external_data"] = len(files) > 1
    tool["opset"] = _opset(job.path)
    return Exported(job.path, files, "fp32", tool)


def _export_torch(job: ExportJob) -> dict[str, Any]:
    import torch

    module = job.source.module
    assert module is not None
    big = _parameter_bytes(module) > EXTERNAL_DATA_THRESHOLD
    tool: dict[str, Any] = {"exporter": "torch.onnx (dynamo)", "version": _torch_version(),
                            "opset_requested": job.config.opset}
    dynamic_shapes = job.torch_dynamic_shapes()
    try:
        with quiet_tool("torch.onnx"):
            program = torch.onnx.export(
                module, job.torch_args(), dynamo=True, verbose=False,
                input_names=job.input_names, output_names=job.output_names,
                opset_version=job.config.opset, dynamic_shapes=dynamic_shapes,
                external_data=big)
            assert program is not None
            program.save(str(job.path), external_data=big)
        return tool
    except Exception as exc:  # the dynamo exporter raises many kinds; all mean "try TorchScript"
        dynamo_error = root_cause(exc)
        _remove(job.path)
    log.warning("The dynamo ONNX exporter failed (%s); falling back to the TorchScript "
                "exporter.", dynamo_error)
    tool.update(exporter="torch.onnx (torchscript)", fallback={"from": "dynamo",
                                                               "reason": dynamo_error})
    dynamic_axes: dict[str, dict[int, str]] | None = job.dynamic_axis_names() or None
    if dynamic_axes is not None and job.dynamic_batch:
        dynamic_axes.update({name: {0: "batch"} for name in job.output_names})
    kwargs: dict[str, Any] = {} if job.config.opset is None else {"opset_version": job.config.opset}
    try:
        with quiet_tool("torch.onnx"):
            torch.onnx.export(module, job.torch_args(), str(job.path), dynamo=False,
                              input_names=job.input_names, output_names=job.output_names,
                              dynamic_axes=dynamic_axes, **kwargs)
    except Exception as exc:
        raise conversion_failed(
            f"Neither ONNX exporter could export the model. dynamo: {dynamo_error}; "
            "TorchScript", exc,
            hint="rewrite the failing part of forward() with ops ONNX supports, or try another "
            "--opset; --debug shows the full traceback.", reference="onnx-export-failed",
            errors_text=f"{dynamo_error}\n{exc}") from exc
    if not big:
        _inline(job.path)
    return tool


def _resave_onnx(job: ExportJob) -> dict[str, Any]:
    """An ONNX source: convert its opset if asked, and save it (inline when small)."""
    import onnx

    assert job.source.onnx_path is not None
    proto = onnx.load(str(job.source.onnx_path))
    tool: dict[str, Any] = {"exporter": "onnx (re-save of the ONNX source)",
                            "version": onnx.__version__, "opset_requested": job.config.opset}
    if job.config.dynamic_batch:
        log.warning("--dynamic-batch does not apply to an ONNX source; its input shapes are "
                    "kept as they are in the file.")
    current = _proto_opset(proto)
    if job.config.opset is not None and job.config.opset != current:
        from onnx import version_converter

        try:
            proto = version_converter.convert_version(proto, job.config.opset)
        except Exception as exc:
            raise UnsupportedError(
                f"onnx cannot convert the model from opset {current} to {job.config.opset}: "
                f"{first_line(exc)}",
                hint=f"leave --opset out to keep opset {current}.",
                reference="opset-conversion-failed") from exc
    _save(proto, job.path, external=_big(proto))
    return tool


def _simplify(job: ExportJob) -> dict[str, Any]:
    """Run onnxslim; keep its model only if ORT's outputs do not change beyond the tolerance."""
    import onnx
    import onnxslim

    from edgepipe.export.validate import compare_outputs
    from edgepipe.runtime.onnx_runtime import OnnxRuntimeSession

    before = OnnxRuntimeSession(job.path, job.config.threads).run(job.sample)
    try:
        with quiet_tool("onnxslim"):
            slim = onnxslim.slim(onnx.load(str(job.path)))
    except Exception as exc:
        log.warning("onnxslim failed (%s); keeping the model as exported.", first_line(exc))
        return {"applied": False, "tool": "onnxslim", "reason": f"onnxslim failed: {first_line(exc)}"}
    candidate = job.path.with_name(job.path.stem + ".slim.onnx")
    _save(slim, candidate, external=_big(slim))
    after = OnnxRuntimeSession(candidate, job.config.threads).run(job.sample)
    names = [f"output_{i}" for i in range(len(before))]
    report = compare_outputs(before, after, names, job.config.tolerance("fp32"))
    info = {"tool": "onnxslim", "version": version("onnxslim"),
            "max_abs_diff_vs_unsimplified": max(o.max_abs_diff for o in report.outputs)}
    if not report.passed:
        log.warning("onnxslim changed the outputs (%s); keeping the model as exported.",
                    report.worst.line())
        _remove_model(candidate)
        return {**info, "applied": False, "reason": "outputs changed"}
    slim = onnx.load(str(candidate))
    _remove_model(candidate)
    _remove_model(job.path)
    _save(slim, job.path, external=_big(slim))
    return {**info, "applied": True}


def _check(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=False)
    except Exception as exc:
        raise UnsupportedError(f"The exported ONNX model fails onnx.checker: {first_line(exc)}",
                               hint="this is a bug in the exporter; --debug shows details.",
                               reference="onnx-check-failed") from exc


def _save(proto: Any, path: Path, *, external: bool) -> None:
    import onnx

    data = path.name + ".data"
    _remove(path.with_name(data))
    onnx.save_model(proto, str(path), save_as_external_data=external, all_tensors_to_one_file=True,
                    location=data if external else None, size_threshold=1024)


def _inline(path: Path) -> None:
    """Fold any external data written by the exporter back into the file (small models)."""
    import onnx

    external = _external_files(path)
    if external:
        proto = onnx.load(str(path))
        for file in external:
            _remove(file)
        _save(proto, path, external=False)


def _external_files(path: Path) -> list[Path]:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    locations = {entry.value for init in proto.graph.initializer
                 for entry in init.external_data if entry.key == "location"}
    return [path.with_name(loc) for loc in sorted(locations)]


def _big(proto: Any) -> bool:
    """Whether a ModelProto's weights need external data (counted without serialising it)."""
    from onnx import numpy_helper

    total = 0
    for tensor in proto.graph.initializer:
        if tensor.HasField("raw_data"):
            total += len(tensor.raw_data)
        else:
            total += numpy_helper.to_array(tensor).nbytes
    return total > EXTERNAL_DATA_THRESHOLD


def _parameter_bytes(module: Any) -> int:
    tensors = [*module.parameters(), *module.buffers()]
    return int(sum(t.numel() * t.element_size() for t in tensors))


def _opset(path: Path) -> int | None:
    import onnx

    return _proto_opset(onnx.load(str(path), load_external_data=False))


def _proto_opset(proto: Any) -> int | None:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)


def _torch_version() -> str:
    import torch

    return torch.__version__.split("+")[0]


def _remove_model(path: Path) -> None:
    """Remove an .onnx file and its external data."""
    for file in _external_files(path):
        _remove(file)
    _remove(path)


def _remove(path: Path) -> None:
    if os.path.exists(path):
        os.unlink(path)
