"""Input and output specs read from an ONNX graph (no model loading; ``onnx`` is imported
by the caller that parsed the file)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgepipe.tensors import Dim, TensorSpec


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
