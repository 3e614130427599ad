"""Each kind of DATA spec loads, and each kind of bad input fails with a message and a hint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgepipe.data import load_data
from edgepipe.errors import DataError


def save_npz(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return str(path)


def make_image_folder(root: Path, classes: dict[str, int], size: tuple[int, int] = (10, 12),
                      mode: str = "RGB") -> Path:
    """One sub-folder per class with ``count`` images of ``size`` (width, height)."""
    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(
                root / name / f"{i}.png")
    return root


def raises_data_error(spec: object, reference: str, *words: str, **options: object) -> DataError:
    with pytest.raises(DataError) as info:
        load_data(spec, **options)  # type: ignore[arg-type]
    error = info.value
    assert error.reference == reference
    assert error.hint
    for word in words:
        assert word in error.message, (word, error.message)
    return error


# ---------------------------------------------------------------- good input


def test_npz_with_x_and_y(tmp_path):
    x = np.random.default_rng(0).standard_normal((7, 3, 4, 4)).astype(np.float32)
    y = np.arange(7) % 3
    data = load_data(save_npz(tmp_path / "d.npz", x=x, y=y))
    assert list(data.inputs) == ["x"]
    np.testing.assert_array_equal(data.x, x)
    assert data.labels.dtype == np.int64 and data.labels.tolist() == y.tolist()
    assert len(data) == 7 and data.num_classes == 3


def test_npz_without_labels_and_whole_float_labels(tmp_path):
    x = np.zeros((4, 5), np.float32)
    assert load_data(save_npz(tmp_path / "a.npz", x=x)).labels is None
    data = load_data(save_npz(tmp_path / "b.npz", x=x, y=np.array([0.0, 1.0, 2.0, 1.0])))
    assert data.labels.tolist() == [0, 1, 2, 1] and data.labels.dtype == np.int64


def test_npz_with_several_inputs(tmp_path):
    ids = np.ones((5, 8), np.int64)
    mask = np.ones((5, 8), np.float32)
    path = save_npz(tmp_path / "m.npz", input_ids=ids, mask=mask, y=np.zeros(5, np.int64))
    data = load_data(path, input_names=["input_ids", "mask"])
    assert list(data.inputs) == ["input_ids", "mask"]
    arrays, labels = next(data.batches(2))
    assert [a.shape for a in arrays] == [(2, 8), (2, 8)] and labels.shape == (2,)


def test_image_folder_resized_and_normalized(tmp_path):
    root = make_image_folder(tmp_path / "imgs", {"cat": 2, "dog": 3})
    data = load_data(root, image_size=16)
    assert data.x.shape == (5, 3, 16, 16) and data.x.dtype == np.float32
    assert data.x.min() >= 0.0 and data.x.max() <= 1.0
    assert data.class_names == ["cat", "dog"] and data.labels.tolist() == [0, 0, 1, 1, 1]
    raw = load_data(root, image_size=(8, 6), normalize="none", layout="NHWC")
    assert raw.x.shape == (5, 8, 6, 3) and raw.x.max() > 1.0
    net = load_data(root, normalize="imagenet")
    assert net.x.shape == (5, 3, 12, 10) and net.x.min() < 0.0


def test_image_folder_grayscale(tmp_path):
    root = make_image_folder(tmp_path / "g", {"a": 1, "b": 1}, mode="L")
    assert load_data(root, channels=1).x.shape == (2, 1, 12, 10)


def test_builtin_digits_flat_and_image_shaped():
    flat = load_data("builtin:digits")
    assert flat.x.shape == (1797, 64) and flat.x.dtype == np.float32
    assert flat.x.min() == 0.0 and flat.x.max() == 1.0
    assert flat.num_classes == 10 and flat.labels.dtype == np.int64
    images = load_data("builtin:digits", image_size=32)
    assert images.x.shape == (1797, 3, 32, 32)
    # bilinear upsampling keeps the value range and averages: the means stay close
    assert abs(float(images.x.mean()) - float(flat.x.mean())) < 0.02
    gray = load_data("builtin:digits", image_size=8, channels=1)
    np.testing.assert_allclose(gray.x.reshape(-1, 64), flat.x, atol=1e-6)


# ---------------------------------------------------------------- bad input


def test_missing_file_and_folder(tmp_path):
    raises_data_error(tmp_path / "nope.npz", "data-not-found", "nope.npz")
    raises_data_error(tmp_path / "no_folder", "data-not-found", "no_folder")


def test_unknown_builtin_lists_the_valid_ones():
    error = raises_data_error("builtin:mnist", "unknown-builtin-data", "mnist")
    assert "builtin:digits" in error.hint


def test_unsupported_file_type(tmp_path):
    (tmp_path / "d.csv").write_text("1,2\n")
    raises_data_error(tmp_path / "d.csv", "data-format", ".csv")


def test_corrupt_npz(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    raises_data_error(tmp_path / "bad.npz", "data-unreadable", "bad.npz")


def test_npz_without_x_names_its_arrays(tmp_path):
    path = save_npz(tmp_path / "d.npz", features=np.zeros((2, 3)), y=np.zeros(2, np.int64))
    error = raises_data_error(path, "npz-missing-x", "'x'", "features", "y")
    assert "x=" in error.hint


def test_npz_missing_an_input_of_a_multi_input_model(tmp_path):
    path = save_npz(tmp_path / "d.npz", input_ids=np.zeros((2, 3), np.int64))
    raises_data_error(path, "npz-missing-array", "mask", "input_ids",
                      input_names=["input_ids", "mask"])


def test_x_not_numeric(tmp_path):
    raises_data_error(save_npz(tmp_path / "s.npz", x=np.array([["a", "b"]])),
                      "data-not-numeric", "'x'", "<U1")
    raises_data_error(save_npz(tmp_path / "o.npz", x=np.array([{}, []], dtype=object)),
                      "data-not-numeric", "Python objects")


def test_x_wrong_rank(tmp_path):
    raises_data_error(save_npz(tmp_path / "d.npz", x=np.zeros(5, np.float32)),
                      "data-bad-rank", "(5,)")


def test_labels_of_another_length(tmp_path):
    path = save_npz(tmp_path / "d.npz", x=np.zeros((4, 2)), y=np.zeros(3, np.int64))
    raises_data_error(path, "labels-length-mismatch", "4 samples", "3 labels")


def test_non_integer_labels(tmp_path):
    path = save_npz(tmp_path / "d.npz", x=np.zeros((3, 2)), y=np.array([0.0, 1.5, 2.0]))
    raises_data_error(path, "labels-not-integer", "not integers", "sample 1", "1.5")
    path = save_npz(tmp_path / "s.npz", x=np.zeros((2, 2)), y=np.array(["cat", "dog"]))
    raises_data_error(path, "labels-not-integer", "not integers")


def test_negative_labels(tmp_path):
    path = save_npz(tmp_path / "d.npz", x=np.zeros((3, 2)), y=np.array([0, -1, 2]))
    raises_data_error(path, "labels-negative", "1 negative", "sample 1")


def test_one_hot_labels(tmp_path):
    path = save_npz(tmp_path / "d.npz", x=np.zeros((3, 2)), y=np.eye(3, dtype=np.int64))
    error = raises_data_error(path, "labels-bad-shape", "(3, 3)")
    assert "argmax" in error.hint


def test_nan_and_inf_counted_with_first_sample(tmp_path):
    x = np.zeros((6, 4), np.float32)
    x[2, 1] = np.nan
    x[4, 0] = x[4, 3] = np.inf
    raises_data_error(save_npz(tmp_path / "d.npz", x=x), "data-not-finite",
                      "3 NaN or Inf values", "2 samples", "sample 2")


def test_folder_without_class_folders(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "loose.png")
    raises_data_error(tmp_path, "no-class-folders", "no class sub-folders", "1 images")


def test_folder_with_empty_class_folders(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    raises_data_error(tmp_path, "no-images", "no images", "2 of its 2", "a, b")


def test_unreadable_image_is_named(tmp_path):
    root = make_image_folder(tmp_path / "imgs", {"a": 1})
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    raises_data_error(root, "image-unreadable", "broken.jpg")


def test_images_of_different_sizes_need_an_image_size(tmp_path):
    root = make_image_folder(tmp_path / "imgs", {"a": 1})
    Image.new("RGB", (5, 5)).save(root / "a" / "small.png")
    raises_data_error(root, "image-sizes-differ", "2 different sizes")
    assert load_data(root, image_size=6).x.shape == (2, 3, 6, 6)


def test_bad_options():
    raises_data_error("builtin:digits", "bad-normalize", "'zscore'", normalize="zscore")
    raises_data_error("builtin:digits", "bad-layout", "'CHW'", layout="CHW")
    raises_data_error("builtin:digits", "bad-image-size", "(0, 3)", image_size=(0, 3))
    raises_data_error("builtin:digits", "bad-channels", "one channel", channels=3)


def test_digits_upsampling_matches_torch_bilinear():
    import torch

    from edgepipe.data.readers import resize_bilinear

    images = load_data("builtin:digits").x[:50].reshape(-1, 8, 8)
    ours = resize_bilinear(images, (32, 20))
    theirs = torch.nn.functional.interpolate(torch.from_numpy(images)[:, None], size=(32, 20),
                                             mode="bilinear", align_corners=False)[:, 0]
    np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-5)
