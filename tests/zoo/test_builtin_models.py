"""The bundled digits models: load through the MODEL spec, shapes, and an accuracy floor."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from edgepipe import model as model_module
from edgepipe import zoo
from edgepipe.data import load_data_for_model, make_splits
from edgepipe.errors import ModelError
from edgepipe.model import load_model, run_torch


def eval_accuracy(spec: str) -> float:
    loaded = load_model(spec)
    data = load_data_for_model("builtin:digits", loaded.inputs, num_classes=10)
    part = make_splits(data, seed=0).eval
    correct = sum(int((run_torch(loaded.module, arrays)[0].argmax(1) == labels).sum())
                  for arrays, labels in part.batches(256))
    return correct / len(part)


@pytest.mark.parametrize("name", ["digits-cnn", "digits-mlp"])
def test_bundled_model_reaches_the_accuracy_floor(name):
    accuracy = eval_accuracy(f"builtin:{name}")
    assert accuracy >= 0.97, accuracy
    # The record states what training measured on the same split and weights.
    assert accuracy == pytest.approx(zoo.training_record(name)["eval_accuracy"], abs=1e-3)


def test_input_shapes_through_load_model():
    assert load_model("builtin:digits-mlp").inputs[0].shape == (1, 64)
    assert load_model("builtin:digits-cnn").inputs[0].shape == (1, 3, 32, 32)


def test_untrained_model_differs_and_weights_change_the_hash():
    trained, _ = zoo.builtin_model("digits-mlp")
    fresh, shape = zoo.builtin_model("digits-mlp", pretrained=False)
    assert shape == (1, 64)
    assert not torch.equal(trained.fc1.weight, fresh.fc1.weight)
    loaded = load_model("builtin:digits-cnn")
    assert zoo.weights_path("digits-cnn") in loaded.files


def test_layers_have_stable_names_and_no_control_flow():
    cnn, _ = zoo.builtin_model("digits-cnn", pretrained=False)
    assert [n for n, _ in cnn.named_children()][:4] == ["conv1", "bn1", "relu1", "pool1"]
    assert isinstance(cnn, torch.nn.Sequential)
    traced = torch.fx.symbolic_trace(cnn)  # a straight chain traces without guards
    x = torch.zeros(2, 3, 32, 32)
    torch.testing.assert_close(traced(x), cnn(x))
    mlp, _ = zoo.builtin_model("digits-mlp", pretrained=False)
    assert [n for n, _ in mlp.named_children()] == ["fc1", "relu1", "fc2", "relu2", "fc3"]


def test_records_describe_the_training():
    for name in zoo.MODELS:
        record = zoo.training_record(name)
        assert record["model"] == name and record["config"]["seed"] == 0
        assert record["data"]["split"]["seed"] == 0 and record["train_time_s"] > 0
        assert record["weights_sha256"] == model_module.file_sha256(zoo.weights_path(name))
        json.dumps(record)


def test_unknown_builtin_model():
    with pytest.raises(ModelError) as info:
        zoo.builtin_model("digits-vit")
    assert info.value.reference == "unknown-builtin-model" and "digits-cnn" in info.value.hint


def test_outputs_are_logits_for_ten_classes():
    loaded = load_model("builtin:digits-cnn")
    batch = np.random.default_rng(0).random((3, 3, 32, 32), dtype=np.float32)
    out = run_torch(loaded.module, [batch])
    assert len(out) == 1 and out[0].shape == (3, 10) and np.isfinite(out[0]).all()
