"""open_artifact: one Session shape over ONNX Runtime, OpenVINO, LiteRT and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tiny_models
from edgepipe.errors import InputError, ShapeError, UnsupportedError
from edgepipe.model import run_torch
from edgepipe.runtime import open_artifact
from edgepipe.tensors import TensorSpec


@pytest.fixture(scope="module")
def mlp_files(tmp_path_factory):
    """The tiny MLP as .onnx (TorchScript exporter: fast), OpenVINO IR, .tflite and .pt2."""
    import litert_torch

    from edgepipe.runtime.openvino_runtime import import_openvino

    folder = tmp_path_factory.mktemp("mlp")
    module = tiny_models.mlp().eval()
    x = torch.randn(2, 64)
    torch.onnx.export(module, (x,), str(folder / "mlp.onnx"), dynamo=False,
                      input_names=["features"], output_names=["logits"])
    ov = import_openvino()
    ov.save_model(ov.convert_model(module, example_input=(x,), input=[[2, 64]]),
                  str(folder / "mlp.xml"),
                  compress_to_fp16=False)
    litert_torch.convert(module, (x,)).export(str(folder / "mlp.tflite"))
    torch.export.save(torch.export.export(module, (x,)), str(folder / "mlp.pt2"))
    return module, folder


@pytest.mark.parametrize("suffix, runtime", [(".onnx", "onnxruntime"), (".xml", "openvino"),
                                             (".tflite", "litert"), (".pt2", "torch")])
def test_each_runtime_runs_and_matches_torch(mlp_files, suffix, runtime):
    module, folder = mlp_files
    session = open_artifact(folder / f"mlp{suffix}", threads=1)
    assert session.name == runtime and session.version
    assert len(session.inputs) == 1 and session.inputs[0].shape[-1] == 64
    assert len(session.outputs) == 1
    x = np.random.default_rng(0).standard_normal((2, 64)).astype(np.float32)
    got = session.run([x])
    assert len(got) == 1
    np.testing.assert_allclose(got[0], run_torch(module, [x])[0], atol=1e-5)
    assert session.describe().runtime == runtime


def test_onnxruntime_options_are_explicit(mlp_files):
    _, folder = mlp_files
    session = open_artifact(folder / "mlp.onnx", threads=1)
    assert session.inputs[0] == TensorSpec("features", (2, 64), "float32")
    assert session.options["intra_op_num_threads"] == 1
    assert session.options["inter_op_num_threads"] == 1
    assert session.options["providers"] == ["CPUExecutionProvider"]


def test_openvino_runs_in_f32_unless_told(mlp_files):
    _, folder = mlp_files
    assert open_artifact(folder / "mlp.xml").options["inference_precision_hint"] == "f32"


def test_wrong_shape_and_count_are_shape_errors(mlp_files):
    _, folder = mlp_files
    session = open_artifact(folder / "mlp.onnx")
    with pytest.raises(ShapeError, match="2x64"):
        session.run([np.zeros((2, 63), np.float32)])
    with pytest.raises(ShapeError, match="1 input"):
        session.run([np.zeros((2, 64), np.float32)] * 2)


def test_inputs_are_cast_to_the_artifact_dtype(mlp_files):
    _, folder = mlp_files
    session = open_artifact(folder / "mlp.tflite")
    out = session.run([np.zeros((2, 64), np.float64)])  # float64 in, float32 model
    assert out[0].dtype == np.float32


def test_unknown_suffix_and_missing_file(tmp_path):
    (tmp_path / "model.mlmodel").write_bytes(b"x")
    with pytest.raises(UnsupportedError) as info:
        open_artifact(tmp_path / "model.mlmodel")
    assert ".tflite" in info.value.hint
    with pytest.raises(InputError):
        open_artifact(tmp_path / "absent.onnx")


def test_run_batched_pads_a_short_last_batch_for_fixed_batch_models():
    import numpy as np

    from edgepipe.runtime.base import run_batched

    sizes: list[int] = []

    def fixed_batch_of_three(arrays):
        assert len(arrays[0]) == 3  # a fixed-batch model takes exactly its batch
        sizes.append(len(arrays[0]))
        return [arrays[0] * 2]

    x = np.arange(7, dtype=np.float32)[:, None]
    (out,) = run_batched(fixed_batch_of_three, [x], 3)
    assert sizes == [3, 3, 3]
    assert np.array_equal(out, x * 2)  # padding dropped, order kept
