"""ONNX files as MODEL: validity checks and input/output specs from the graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgepipe.errors import ModelError, first_line
from edgepipe.model.loaded import LoadedModel, merge_inputs
from edgepipe.model.onnx_specs import onnx_input_specs
from edgepipe.tensors import TensorSpec


def load_onnx(spec: str, path: Path, inputs: list[TensorSpec] | None) -> LoadedModel:
    import onnx

    if path.stat().st_size == 0:
        raise ModelError(
            f"'{path}' is empty (0 bytes).",
            hint="the file was not written completely; export it again.",
            reference="onnx-invalid",
        )
    try:
        proto = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(str(path))
    except Exception as exc:  # onnx raises DecodeError, ValidationError, OSError...
        raise ModelError(
            f"'{path}' is not a valid ONNX model: {first_line(exc)}",
            hint="the file may be truncated or not ONNX at all; export it again "
            "(and keep any .onnx.data file beside it).",
            reference="onnx-invalid",
        ) from exc
    graph_inputs = onnx_input_specs(proto)
    resolved = merge_inputs(graph_inputs, inputs, source="the ONNX graph")
    files = [path] + _onnx_external_files(proto, path.parent)
    return LoadedModel(spec=spec, kind="onnx", inputs=resolved, onnx_path=path, files=files)


def _onnx_external_files(proto: Any, folder: Path) -> list[Path]:
    locations = set()
    for init in proto.graph.initializer:
        for entry in init.external_data:
            if entry.key == "location":
                locations.add(entry.value)
    return [folder / loc for loc in sorted(locations)]
