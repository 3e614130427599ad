"""Model intake: every MODEL spec kind, input shapes, weights, and the bad inputs of issue 2."""

from __future__ import annotations

import textwrap

import pytest
import torch

import tiny_models
from edgepipe.errors import ModelError, ShapeError, UnsafePickleError, WeightsError
from edgepipe.model import load_model, run_torch
from edgepipe.tensors import TensorSpec


@pytest.fixture
def factory_dir(tmp_path, monkeypatch):
    """A user package in the current directory, as `package.module:factory` expects."""
    pkg = tmp_path / "usernets"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        def small(width=4):
            torch.manual_seed(0)
            return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.Flatten(),
                                 nn.LazyLinear(2))

        def mlp():
            return nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 3))

        def broken():
            raise ValueError("width must be positive")
    """))
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def test_factory_spec_is_imported_from_the_current_directory(factory_dir):
    loaded = load_model("usernets.nets:mlp", input_shape=(2, 8))
    assert loaded.kind == "torch"
    assert loaded.inputs == [TensorSpec("input", (2, 8), "float32")]
    (out,) = run_torch(loaded.module, loaded.sample_inputs(batch=2))
    assert out.shape == (2, 3)


def test_factory_args_are_passed(factory_dir):
    loaded = load_model("usernets.nets:small", input_shape=(1, 3, 8, 8), model_args={"width": 6})
    assert loaded.module[0].out_channels == 6


def test_factory_that_raises_names_the_error(factory_dir):
    with pytest.raises(ModelError, match="width must be positive") as info:
        load_model("usernets.nets:broken", input_shape=(1, 8))
    assert info.value.reference == "factory-failed"
    assert "--debug" in info.value.hint


def test_factory_missing_suggests_close_names(factory_dir):
    with pytest.raises(ModelError, match="no callable named 'mpl'") as info:
        load_model("usernets.nets:mpl", input_shape=(1, 8))
    assert "mlp" in info.value.hint


def test_factory_module_missing(factory_dir):
    with pytest.raises(ModelError, match="Cannot import 'usernets.nope'") as info:
        load_model("usernets.nope:mlp", input_shape=(1, 8))
    assert "PYTHONPATH" in info.value.hint


def test_factory_without_input_shape_asks_for_one(factory_dir):
    with pytest.raises(ShapeError) as info:
        load_model("usernets.nets:mlp")
    assert info.value.reference == "input-shape-needed"
    assert "--input-shape" in info.value.hint


def test_torchvision_default_shape_and_unknown_name():
    loaded = load_model("torchvision:resnet18", check=False)
    assert loaded.inputs[0].shape == (1, 3, 224, 224)
    with pytest.raises(ModelError, match="no architecture named 'resnet81'") as info:
        load_model("torchvision:resnet81")
    assert "resnet18" in info.value.hint
    assert info.value.reference == "unknown-torchvision-model"


def test_input_shape_of_wrong_rank():
    with pytest.raises(ShapeError, match="rank 3") as info:
        load_model("torchvision:resnet18", input_shape=(3, 224, 224))
    assert "1x3x224x224" in info.value.hint


def test_input_shape_the_model_cannot_take(factory_dir):
    with pytest.raises(ShapeError, match="failed on an input of shape 1x5") as info:
        load_model("usernets.nets:mlp", input_shape=(1, 5))
    assert info.value.reference == "forward-failed"


def test_state_dict_weights_load(tmp_path):
    reference = tiny_models.ResidualCNN()
    torch.nn.init.constant_(reference.fc.bias, 0.25)
    path = tmp_path / "w.pt"
    torch.save(reference.state_dict(), path)
    safetensors_path = tmp_path / "w.safetensors"
    from safetensors.torch import save_file

    save_file(reference.state_dict(), str(safetensors_path))
    for weights in (path, safetensors_path):
        loaded = load_model("tiny_models:residual_cnn", input_shape=(1, 3, 16, 16),
                            weights=weights)
        assert torch.equal(loaded.module.fc.bias, reference.fc.bias)


def test_checkpoint_dict_with_state_dict_key(tmp_path):
    reference = tiny_models.mlp()
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "state_dict": reference.state_dict()}, path)
    loaded = load_model("tiny_models:mlp", input_shape=(1, 64), weights=path)
    assert torch.equal(loaded.module[0].weight, reference[0].weight)


def test_weights_whose_keys_do_not_match_name_the_keys(tmp_path):
    path = tmp_path / "w.pt"
    state = tiny_models.mlp(hidden=16).state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["2.bias"]
    torch.save(state, path)
    with pytest.raises(WeightsError) as info:
        load_model("tiny_models:mlp", input_shape=(1, 64), weights=path)
    message = info.value.message
    assert "missing from the file: 2.bias" in message
    assert "not in the model: extra.weight" in message
    assert "wrong shape: " in message
    assert "0.weight (file (16, 64), model (32, 64))" in message
    assert set(info.value.details["missing"]) == {"2.bias"}


def test_pickled_module_is_refused_without_trust(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(tiny_models.mlp(), path)
    with pytest.raises(UnsafePickleError) as info:
        load_model(str(path), input_shape=(1, 64))
    assert "--trust-pickle" in info.value.hint
    loaded = load_model(str(path), input_shape=(1, 64), trust_pickle=True)
    assert isinstance(loaded.module, torch.nn.Sequential)


def test_pickled_module_as_weights_is_refused(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(tiny_models.mlp(), path)
    with pytest.raises(UnsafePickleError, match="pickled Python objects"):
        load_model("tiny_models:mlp", input_shape=(1, 64), weights=path)


def test_exported_program_keeps_its_input_specs(tmp_path):
    model = tiny_models.TwoInputModel().eval()
    args = (torch.randint(0, 50, (2, 7)), torch.ones(2, 7))
    path = tmp_path / "two.pt2"
    torch.export.save(torch.export.export(model, args), str(path))
    loaded = load_model(str(path))
    assert [(s.name, s.shape, s.dtype) for s in loaded.inputs] == [
        ("input_ids", (2, 7), "int64"), ("mask", (2, 7), "float32")]
    expected = model(*args).detach().numpy()
    (got,) = run_torch(loaded.module, [a.numpy() for a in args])
    assert abs(got - expected).max() < 1e-5


def test_onnx_inputs_come_from_the_graph(tmp_path):
    model = tiny_models.mlp().eval()
    path = tmp_path / "mlp.onnx"
    torch.onnx.export(model, (torch.zeros(1, 64),), str(path), input_names=["features"],
                      dynamic_axes={"features": {0: "batch"}}, dynamo=False)
    loaded = load_model(str(path))
    assert loaded.kind == "onnx"
    assert loaded.inputs == [TensorSpec("features", ("batch", 64), "float32")]
    fixed = load_model(str(path), input_shape=(4, 64))
    assert fixed.inputs[0].shape == (4, 64)
    with pytest.raises(ShapeError, match="dimension 1 fixed to 64"):
        load_model(str(path), input_shape=(4, 65))


@pytest.mark.parametrize("content", [b"", b"\x08\x07garbage-not-a-protobuf" * 3])
def test_empty_or_truncated_onnx(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError) as info:
        load_model(str(path))
    assert info.value.reference == "onnx-invalid"


def test_missing_file_and_unknown_spec(tmp_path):
    with pytest.raises(ModelError, match="No file at") as info:
        load_model(str(tmp_path / "nope.onnx"))
    assert info.value.reference == "model-not-found"
    with pytest.raises(ModelError, match="not a file and not a model spec"):
        load_model("not a spec")
