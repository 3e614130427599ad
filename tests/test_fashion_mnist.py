"""builtin:fashion-mnist (Debian's dataset-fashion-mnist package) and the bundled
fashion-mnist-cnn: the data's counts and shapes, the model's accuracy on the 10,000 test
images, and an export + eval through the CLI. Tests that need the package skip without it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from edgepipe import zoo
from edgepipe.data import idx, load_data, load_data_for_model, make_splits
from edgepipe.errors import DataError
from edgepipe.model import load_model, run_torch

try:
    idx.fashion_mnist_folder()
    INSTALLED = True
except DataError:
    INSTALLED = False

needs_package = pytest.mark.skipif(
    not INSTALLED, reason="Debian's dataset-fashion-mnist is not installed "
    "(apt install dataset-fashion-mnist)")
FLOOR = 0.91


@pytest.fixture(scope="module")
def fashion():
    """builtin:fashion-mnist shaped for the bundled CNN, and the model."""
    loaded = load_model("builtin:fashion-mnist-cnn")
    return loaded, load_data_for_model("builtin:fashion-mnist", loaded.inputs, num_classes=10)


@needs_package
def test_loads_60000_train_and_10000_test_images(fashion):
    data = load_data("builtin:fashion-mnist")
    assert data.x.shape == (70_000, 1, 28, 28) and data.x.dtype == np.float32
    assert data.x.min() >= 0.0 and data.x.max() == 1.0
    assert data.labels.shape == (70_000,) and sorted(set(data.labels.tolist())) == list(range(10))
    assert data.class_names == idx.FASHION_MNIST_CLASSES and data.class_names[9] == "Ankle boot"
    parts = make_splits(data, seed=3)
    assert len(parts.train) == 60_000 and len(parts.eval) == 10_000 and len(parts.calib) == 256
    assert parts.eval_indices[0] == 60_000
    assert np.bincount(parts.eval.labels).tolist() == [1000] * 10
    assert data.preprocessing.source == "builtin:fashion-mnist"
    assert data.preprocessing.scale == pytest.approx(1 / 255)


@needs_package
def test_bundled_model_reaches_the_floor_on_the_test_images(fashion):
    loaded, data = fashion
    part = make_splits(data, seed=0).eval
    torch.set_num_threads(2)
    correct = sum(int((run_torch(loaded.module, arrays)[0].argmax(1) == labels).sum())
                  for arrays, labels in part.batches(500))
    accuracy = correct / len(part)
    assert len(part) == 10_000 and accuracy >= FLOOR, accuracy
    assert accuracy == pytest.approx(zoo.training_record("fashion-mnist-cnn")["eval_accuracy"],
                                     abs=1e-3)


def test_model_shape_record_and_size():
    loaded = load_model("builtin:fashion-mnist-cnn")
    assert loaded.inputs[0].shape == (1, 1, 28, 28)
    out = run_torch(loaded.module, [np.zeros((2, 1, 28, 28), np.float32)])
    assert out[0].shape == (2, 10)
    assert zoo.weights_path("fashion-mnist-cnn").stat().st_size < 2_000_000
    record = zoo.training_record("fashion-mnist-cnn")
    assert record["data"]["spec"] == "builtin:fashion-mnist"
    assert record["data"]["split"]["eval_count"] == 10_000
    assert record["eval_accuracy"] >= FLOOR
    prepared = record["preprocessing"]
    assert prepared["normalize"] == "unit" and prepared["channel_order"] == "gray"
    assert prepared["labels"] == idx.FASHION_MNIST_CLASSES
    traced = torch.fx.symbolic_trace(loaded.module)  # a chain of stages, no control flow
    x = torch.zeros(1, 1, 28, 28)
    torch.testing.assert_close(traced(x), loaded.module(x))


def test_missing_package_names_it_and_the_folder_alternative(monkeypatch, tmp_path):
    monkeypatch.setattr(idx, "FASHION_MNIST_DIRS", (tmp_path / "absent",))
    with pytest.raises(DataError) as info:
        load_data("builtin:fashion-mnist")
    error = info.value
    assert error.reference == "fashion-mnist-missing"
    assert "apt install dataset-fashion-mnist" in error.hint and "idx" in error.hint


@needs_package
def test_export_and_eval_through_the_cli(cli, tmp_path):
    out = tmp_path / "out"
    made = cli("export", "builtin:fashion-mnist-cnn", "--data", "builtin:fashion-mnist",
               "--samples", "16", "-o", out, "--json")
    assert made.code == 0, made
    manifest = json.loads((out / "manifest.json").read_text())
    record = next(a for a in manifest["artifacts"] if a["path"] == "fashion-mnist-cnn.onnx")
    assert record["preprocessing"]["source"] == "builtin:fashion-mnist"
    measured = cli("eval", out / "fashion-mnist-cnn.onnx", "--data", "builtin:fashion-mnist",
                   "--json", "--threads", "2")
    assert measured.code == 0, measured
    result = measured.json()["result"]
    assert result["data"]["samples"] == 10_000 and result["data"]["of"] == 70_000
    expected = zoo.training_record("fashion-mnist-cnn")["eval_accuracy"]
    assert result["metric"] == "top1" and result["value"] == pytest.approx(expected, abs=1e-3)
