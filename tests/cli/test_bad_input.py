"""Issue 2's bad inputs, each through the real CLI: exit 1, the problem named, a hint and
no traceback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tiny_models

CNN = "builtin:digits-cnn"  # takes 1x3x32x32, 10 classes


def _expect_failure(result, reference: str, *words: str) -> None:
    assert result.code == 1, result
    assert f"error: {reference}" in result.stderr, result
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, (word, result)


def _npz(tmp_path, **arrays) -> str:
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return str(path)


def _images(n: int = 6) -> np.ndarray:
    return np.random.default_rng(0).random((n, 3, 32, 32), dtype=np.float32)


def test_missing_model_file(cli, tmp_path):
    _expect_failure(cli("inspect", tmp_path / "model.onnx"), "model-not-found", "No file at")


@pytest.mark.parametrize("content", [b"", b"\x08\x07\x12\x03abc"], ids=["zero-byte", "truncated"])
def test_zero_byte_or_truncated_onnx(cli, tmp_path, content):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    _expect_failure(cli("inspect", path), "onnx-invalid", str(path))


def test_npz_without_x(cli, tmp_path):
    data = _npz(tmp_path, images=_images())
    _expect_failure(cli("inspect", CNN, "--data", data), "npz-missing-x", "no array named 'x'",
                    "images")


def test_x_whose_shape_does_not_fit_the_model(cli, tmp_path):
    data = _npz(tmp_path, x=np.zeros((4, 1, 8, 8), np.float32))
    _expect_failure(cli("inspect", CNN, "--data", data), "data-shape-mismatch", "1x8x8",
                    "3x32x32")


def test_labels_out_of_range(cli, tmp_path):
    data = _npz(tmp_path, x=_images(), y=np.array([0, 1, 2, 3, 10, 12]))
    _expect_failure(cli("inspect", CNN, "--data", data), "labels-out-of-range", "10 classes")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_the_data(cli, tmp_path, bad):
    x = _images()
    x[2, 1, 5, 5] = bad
    _expect_failure(cli("inspect", CNN, "--data", _npz(tmp_path, x=x)), "data-not-finite",
                    "NaN or Inf", "sample 2")


def test_factory_that_raises(cli):
    _expect_failure(cli("inspect", "tiny_models:broken_factory", "--input-shape", "1x8"),
                    "factory-failed", "width must be positive")


def test_unknown_torchvision_name_suggests_close_matches(cli):
    _expect_failure(cli("inspect", "torchvision:mobilenetv2"), "unknown-torchvision-model",
                    "mobilenet_v2")


def test_input_shape_of_the_wrong_rank(cli):
    _expect_failure(cli("inspect", CNN, "--input-shape", "3x32x32"), "shape-mismatch", "rank 3",
                    "1x3x32x32")


def test_weights_whose_keys_do_not_match(cli, tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(tiny_models.mlp().state_dict(), path)
    _expect_failure(cli("inspect", CNN, "--weights", path), "weights-mismatch",
                    "missing from the file", "bn1.weight", "14 more", "not in the model",
                    "0.weight")


def test_pickled_model_is_refused_with_the_trust_flag_named(cli, tmp_path):
    path = tmp_path / "model.pt"
    torch.save(tiny_models.mlp(), path)
    _expect_failure(cli("inspect", path, "--input-shape", "1x64"), "pickle-refused",
                    "--trust-pickle")
    assert cli("inspect", path, "--input-shape", "1x64", "--trust-pickle").code == 0


def test_data_that_fits_is_described(cli):
    result = cli("inspect", CNN, "--data", "builtin:digits", "--json")
    assert result.code == 0, result
    data = result.json()["result"]["data"]
    assert data["count"] == 1797 and data["model_classes"] == 10
    assert data["shapes"] == {"input": [1797, 3, 32, 32]}
    assert data["split"]["eval_count"] + data["split"]["train_count"] == 1797
