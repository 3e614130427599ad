"""The Dataset, fitting data to a model's inputs, and seeded splits."""

from __future__ import annotations

import numpy as np
import pytest

from edgepipe.data import Dataset, check_data_fits, load_data_for_model
from edgepipe.errors import DataError, ShapeError
from edgepipe.tensors import TensorSpec

CNN_INPUT = [TensorSpec("input", (1, 3, 32, 32), "float32")]
MLP_INPUT = [TensorSpec("input", (1, 64), "float32")]


def labelled(n: int = 100, classes: int = 4) -> Dataset:
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    return Dataset({"x": x}, np.arange(n, dtype=np.int64) % classes, source="test")


# ---------------------------------------------------------------- Dataset


def test_dataset_subset_batches_and_describe():
    data = labelled(10, classes=3)
    part = data.subset([7, 2])
    assert part.x[:, 0].tolist() == [14.0, 4.0] and part.labels.tolist() == [1, 2]
    batches = list(data.batches(4))
    assert [len(labels) for _, labels in batches] == [4, 4, 2]
    assert all(isinstance(arrays, list) and len(arrays) == 1 for arrays, _ in batches)
    assert data.describe().to_dict() == {
        "source": "test", "count": 10, "shapes": {"x": [10, 2]}, "dtypes": {"x": "float32"},
        "labelled": True, "num_classes": 3, "classes": None,
    }


def test_dataset_without_labels_yields_none():
    data = Dataset({"x": np.zeros((3, 2), np.float32)}, source="u")
    assert [labels for _, labels in data.batches(2)] == [None, None]
    assert data.num_classes is None and data.describe().labelled is False


def test_dataset_rejects_arrays_of_different_lengths():
    with pytest.raises(DataError) as info:
        Dataset({"a": np.zeros((3, 1)), "b": np.zeros((4, 1))}, source="s")
    assert info.value.reference == "data-length-mismatch" and "a 3, b 4" in info.value.message


def test_x_of_a_multi_input_dataset_says_to_pick_one():
    data = Dataset({"a": np.zeros((2, 1)), "b": np.zeros((2, 1))})
    with pytest.raises(DataError, match="2 inputs"):
        _ = data.x


# ---------------------------------------------------------------- for a model


def test_digits_shaped_for_a_cnn_and_an_mlp():
    cnn = load_data_for_model("builtin:digits", CNN_INPUT, num_classes=10)
    assert list(cnn.inputs) == ["input"] and cnn.x.shape == (1797, 3, 32, 32)
    mlp = load_data_for_model("builtin:digits", MLP_INPUT, num_classes=10)
    assert mlp.x.shape == (1797, 64)
    nhwc = load_data_for_model("builtin:digits", [TensorSpec("img", ("n", 16, 16, 1))])
    assert list(nhwc.inputs) == ["img"] and nhwc.x.shape == (1797, 16, 16, 1)


def test_explicit_options_win_over_the_model_shape():
    with pytest.raises(ShapeError) as info:
        load_data_for_model("builtin:digits", CNN_INPUT, image_size=16)
    assert "3x16x16" in info.value.message and "3x32x32" in info.value.message


def test_npz_mapped_to_the_model_input_and_cast(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((5, 64), np.float64), y=np.arange(5))
    data = load_data_for_model(tmp_path / "d.npz", MLP_INPUT, num_classes=10)
    assert list(data.inputs) == ["input"] and data.x.dtype == np.float32


def test_multi_input_npz_for_a_two_input_model(tmp_path):
    np.savez(tmp_path / "d.npz", mask=np.ones((3, 8), np.float32),
             input_ids=np.ones((3, 8), np.int32))
    specs = [TensorSpec("input_ids", (1, "seq"), "int64"), TensorSpec("mask", (1, "seq"))]
    data = load_data_for_model(tmp_path / "d.npz", specs)
    assert data.inputs["input_ids"].dtype == np.int64 and data.labels is None


def test_wrong_shape_names_both_shapes_and_what_digits_can_make():
    with pytest.raises(ShapeError) as info:
        load_data_for_model("builtin:digits", [TensorSpec("input", (1, 100))])
    error = info.value
    assert error.reference == "data-shape-mismatch"
    assert "64" in error.message and "1x100" in error.message
    assert "1x3x32x32" in error.hint and "1x64" in error.hint


def test_wrong_dtype_kind():
    data = Dataset({"x": np.zeros((2, 4), np.float32)}, source="s")
    with pytest.raises(DataError) as info:
        check_data_fits(data, [TensorSpec("ids", (1, 4), "int64")])
    assert info.value.reference == "data-dtype-mismatch" and "float32" in info.value.message


def test_labels_out_of_range_for_the_model():
    with pytest.raises(DataError) as info:
        load_data_for_model("builtin:digits", MLP_INPUT, num_classes=5)
    error = info.value
    assert error.reference == "labels-out-of-range"
    assert "outside 0..4" in error.message and "largest is 9" in error.message and error.hint


def test_input_count_mismatch():
    data = labelled(4)
    specs = [TensorSpec("a", (1, 2)), TensorSpec("b", (1, 2))]
    with pytest.raises(ShapeError) as info:
        check_data_fits(data, specs)
    assert info.value.reference == "data-inputs-mismatch" and "a, b" in info.value.message


def test_folder_for_a_model_with_dynamic_size_keeps_the_image_size(tmp_path):
    from test_data_readers import make_image_folder

    root = make_image_folder(tmp_path / "imgs", {"a": 2, "b": 1}, size=(10, 12))
    data = load_data_for_model(root, [TensorSpec("input", ("n", 3, "h", "w"))], num_classes=2)
    assert data.x.shape == (3, 3, 12, 10)
    sized = load_data_for_model(root, [TensorSpec("input", (1, 1, 20, 20))])
    assert sized.x.shape == (3, 1, 20, 20) and sized.class_names == ["a", "b"]
