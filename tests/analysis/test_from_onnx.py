"""ONNX graphs: agreement with the torch graph, external data, runtime-measured shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import tiny_models
from edgepipe.analysis import inspect_model
from edgepipe.model import load_model


def _export(module: torch.nn.Module, args: tuple, path: Path) -> Path:
    torch.onnx.export(module.eval(), args, str(path), dynamo=True, verbose=False)
    return path


@pytest.fixture(scope="module")
def conv_zoo_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("conv_zoo")
    return _export(tiny_models.ConvZoo(), (torch.randn(1, 3, 16, 16),), folder / "zoo.onnx")


def test_onnx_and_torch_agree_on_params_macs_and_peak(conv_zoo_onnx: Path) -> None:
    from_onnx = inspect_model(load_model(str(conv_zoo_onnx)))
    from_torch = inspect_model(load_model("tiny_models:conv_zoo", input_shape=(1, 3, 16, 16)))
    assert from_onnx.method.startswith("onnx")
    assert from_onnx.total_params == from_torch.total_params
    assert from_onnx.total_macs == from_torch.total_macs
    assert [m.macs for m in from_onnx.layers if m.macs] == [
        m.macs for m in from_torch.layers if m.macs]
    assert from_onnx.peak_activation_bytes == from_torch.peak_activation_bytes
    assert from_onnx.outputs[0]["shape"] == [1, 5]


def test_two_input_model_agrees_across_backends(tmp_path: Path) -> None:
    ids, mask = torch.zeros(1, 7, dtype=torch.int64), torch.ones(1, 7)
    path = _export(tiny_models.TwoInputModel(), (ids, mask), tmp_path / "two.onnx")
    loaded = load_model(str(path))
    from_onnx = inspect_model(loaded)
    from_torch = inspect_model(load_model("tiny_models:two_input_model", inputs=loaded.inputs))
    assert [i["dtype"] for i in from_onnx.inputs] == ["int64", "float32"]
    assert from_onnx.total_params == from_torch.total_params == 50 * 16 + 16 * 3 + 3
    assert from_onnx.total_macs == from_torch.total_macs == 16 * 3


def test_external_data_is_read_and_sized(conv_zoo_onnx: Path, tmp_path: Path) -> None:
    model = onnx.load(str(conv_zoo_onnx))
    path = tmp_path / "external.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="external.onnx.data", size_threshold=0)
    summary = inspect_model(load_model(str(path)))
    reference = inspect_model(load_model(str(conv_zoo_onnx)))
    assert summary.size_source == "onnx-file+external-data"
    data = tmp_path / "external.onnx.data"
    assert summary.size_bytes == path.stat().st_size + data.stat().st_size
    assert data.stat().st_size >= 4 * summary.total_params  # float32 weights live there
    assert (summary.total_params, summary.total_macs) == (
        reference.total_params, reference.total_macs)


def _conv_bn_nonzero_model() -> onnx.ModelProto:
    """Conv -> BatchNormalization -> Relu -> NonZero: NonZero's size depends on the data."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
        *[numpy_helper.from_array(np.ones(4, np.float32), name)
          for name in ("scale", "shift", "mean", "var")],
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["b"]),
        helper.make_node("Relu", ["b"], ["r"]),
        helper.make_node("NonZero", ["r"], ["nz"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 6, 6])],
        [helper.make_tensor_value_info("nz", TensorProto.INT64, [4, "k"])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_runtime_measures_shapes_static_inference_cannot(tmp_path: Path) -> None:
    path = tmp_path / "nonzero.onnx"
    onnx.save(_conv_bn_nonzero_model(), str(path))
    loaded = load_model(str(path), input_shape=(1, 3, 6, 6))
    summary = inspect_model(loaded)
    assert "onnxruntime" in summary.method
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": loaded.sample_inputs()[0]})[0].shape
    nonzero = summary.layers[-1]
    assert nonzero.op_type == "NonZero"
    assert nonzero.output_shapes == [list(expected)]
    assert nonzero.output_dtypes == ["int64"]
    # BN running mean/var are buffers, not parameters
    assert summary.total_params == 4 * 3 * 9 + 4 + 4
    assert summary.total_macs == 4 * 6 * 6 * 27
