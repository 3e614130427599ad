"""ONNX files as MODEL: validity checks and input/output specs from the graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.errors import ModelError, first_line
from edgepipe.model.loaded import LoadedModel, merge_inputs
from edgepipe.tensors import Dim, TensorSpec


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


def onnx_input_specs(proto: Any) -> list[TensorSpec]:
    """Input specs of an ONNX ModelProto (initializers listed as inputs are skipped)."""
    from onnx import helper

    initializers = {init.name for init in proto.graph.initializer}
    specs = []
    for value in proto.graph.input:
        if value.name in initializers:
            continue
        specs.append(_value_info_spec(value, helper))
    return specs


def onnx_output_specs(proto: Any) -> list[TensorSpec]:
    """Output specs of an ONNX ModelProto."""
    from onnx import helper

    return [_value_info_spec(value, helper) for value in proto.graph.output]


def _value_info_spec(value: Any, helper: Any) -> TensorSpec:
    tensor_type = value.type.tensor_type
    dims: list[Dim] = []
    for i, dim in enumerate(tensor_type.shape.dim):
        if dim.HasField("dim_value") and dim.dim_value > 0:
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param or f"dim{i}")
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)).name
    return TensorSpec(value.name, tuple(dims), dtype)


def _onnx_external_files(proto: Any, folder: Path) -> list[Path]:
    locations = set()
    for init in proto.graph.initializer:
        for entry in init.external_data:
            if entry.key == "location":
                locations.add(entry.value)
    return [folder / loc for loc in sorted(locations)]
