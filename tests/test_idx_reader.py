"""The idx reader (MNIST-format folders): a round trip, plain and gzipped, the split it makes,
and every kind of hostile file failing with its own DataError and a hint."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from edgepipe.data import load_data, load_data_for_model, make_splits
from edgepipe.data.idx import IDX_FILES, read_idx
from edgepipe.errors import DataError
from edgepipe.tensors import TensorSpec

TRAIN, TEST, SIZE = 12, 5, (6, 7)


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    """An idx file of ``array``: 00 00 code ndims, big-endian uint32 dims, big-endian values."""
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.asarray(array, dtype=dtype).tobytes()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def make_idx_folder(root: Path, gz: bool = False, classes: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (TRAIN, *SIZE), dtype=np.uint8),
              "train-labels-idx1-ubyte": np.arange(TRAIN, dtype=np.uint8) % classes,
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (TEST, *SIZE), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": np.arange(TEST, dtype=np.uint8) % classes}
    root.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write(root / name, idx_bytes(array), gz)
    return arrays


def data_error(spec: object, reference: str, *words: str) -> DataError:
    with pytest.raises(DataError) as info:
        load_data(spec)  # type: ignore[arg-type]
    error = info.value
    assert error.reference == reference, (error.reference, error.message)
    assert error.hint
    for word in words:
        assert word in error.message, (word, error.message)
    return error


# ---------------------------------------------------------------- good input


@pytest.mark.parametrize("gz", [False, True])
def test_round_trip_plain_and_gzipped(tmp_path, gz):
    arrays = make_idx_folder(tmp_path, gz)
    data = load_data(tmp_path)
    images = np.concatenate([arrays["train-images-idx3-ubyte"], arrays["t10k-images-idx3-ubyte"]])
    assert data.x.shape == (TRAIN + TEST, 1, *SIZE) and data.x.dtype == np.float32
    np.testing.assert_allclose(data.x[:, 0], images / 255.0, rtol=1e-6)
    labels = np.concatenate([arrays["train-labels-idx1-ubyte"], arrays["t10k-labels-idx1-ubyte"]])
    assert data.labels.dtype == np.int64 and data.labels.tolist() == labels.tolist()
    assert data.class_names == ["0", "1", "2"]
    assert data.predefined_eval.tolist() == [False] * TRAIN + [True] * TEST
    record = data.preprocessing
    assert record.scale == pytest.approx(1 / 255) and record.channel_order == "gray"
    assert record.resize is None and record.layout == "NCHW"


def test_every_idx_dtype_reads_back(tmp_path):
    values = np.array([[0, 1, 2], [3, 4, 5]])
    for code in (0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E):
        path = write(tmp_path / f"a{code}", idx_bytes(values, code))
        np.testing.assert_array_equal(read_idx(path), values)


def test_test_files_are_the_eval_split_whatever_the_seed(tmp_path):
    make_idx_folder(tmp_path)
    data = load_data(tmp_path)
    for seed in (0, 1):
        parts = make_splits(data, seed=seed, calib_size=4)
        assert parts.eval_indices.tolist() == list(range(TRAIN, TRAIN + TEST))
        assert parts.train_indices.tolist() == list(range(TRAIN))
        assert len(parts.calib) == 4 and set(parts.calib_indices) <= set(parts.train_indices)
    # A part of it (the train part) has no test samples left: split as any dataset is.
    inner = make_splits(make_splits(data, seed=0).train, seed=0, eval_fraction=0.25)
    assert len(inner.eval) == 3 and len(inner.train) == 9


def test_shaped_for_a_model_resized_and_three_channels(tmp_path):
    make_idx_folder(tmp_path, gz=True)
    data = load_data_for_model(tmp_path, [TensorSpec("input", (1, 3, 8, 8), "float32")])
    assert data.inputs["input"].shape == (TRAIN + TEST, 3, 8, 8)
    assert data.preprocessing.resize == [8, 8]
    nhwc = load_data(tmp_path, layout="NHWC", normalize="none")
    assert nhwc.x.shape == (TRAIN + TEST, *SIZE, 1) and nhwc.x.max() > 1


def test_plain_file_wins_over_gz(tmp_path):
    make_idx_folder(tmp_path, gz=True)
    make_idx_folder(tmp_path, gz=False)
    assert len(load_data(tmp_path)) == TRAIN + TEST


# ---------------------------------------------------------------- hostile files


def test_missing_files_are_named(tmp_path):
    make_idx_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    data_error(tmp_path, "idx-files-missing", "t10k-labels-idx1-ubyte")


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_values(tmp_path, gz):
    arrays = make_idx_folder(tmp_path, gz)
    name = "train-images-idx3-ubyte"
    full = idx_bytes(arrays[name])
    write(tmp_path / name, full[:-10], gz)
    data_error(tmp_path, "idx-truncated", name, "truncated")


def test_gzip_stream_cut_short(tmp_path):
    make_idx_folder(tmp_path, gz=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    data_error(tmp_path, "idx-truncated", "gzip stream ends early")


@pytest.mark.parametrize("cut", [2, 9])
def test_truncated_header(tmp_path, cut):
    make_idx_folder(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:cut])  # inside the magic; inside the dims
    data_error(tmp_path, "idx-truncated", "truncated")


@pytest.mark.parametrize("magic", [b"\x1f\x8b\x08\x00", b"\x00\x01\x08\x03", b"\x00\x00\x07\x03",
                                   b"\x00\x00\x08\x00", b"PNG\x0d"])
def test_wrong_magic(tmp_path, magic):
    make_idx_folder(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(magic + path.read_bytes()[4:])
    data_error(tmp_path, "idx-bad-magic", "not an idx file")


def test_gzip_named_plain_and_plain_named_gz(tmp_path):
    arrays = make_idx_folder(tmp_path)
    name = "t10k-images-idx3-ubyte"
    (tmp_path / name).write_bytes(gzip.compress(idx_bytes(arrays[name])))
    data_error(tmp_path, "idx-bad-magic")
    (tmp_path / name).unlink()
    (tmp_path / f"{name}.gz").write_bytes(idx_bytes(arrays[name]))
    data_error(tmp_path, "idx-unreadable", name)


def test_dims_that_do_not_match_the_file_length(tmp_path):
    arrays = make_idx_folder(tmp_path)
    name = "train-images-idx3-ubyte"
    (tmp_path / name).write_bytes(idx_bytes(arrays[name]) + b"\x00" * 7)
    data_error(tmp_path, "idx-trailing-data", "trailing")
    # Fewer images declared than stored: the dims say 11, the file holds 12.
    data = bytearray(idx_bytes(arrays[name]))
    data[4:8] = struct.pack(">I", TRAIN - 1)
    (tmp_path / name).write_bytes(bytes(data))
    data_error(tmp_path, "idx-trailing-data")


@pytest.mark.parametrize("gz", [False, True])
def test_huge_declared_dims_fail_before_any_allocation(tmp_path, gz):
    make_idx_folder(tmp_path)
    name = "train-images-idx3-ubyte"
    (tmp_path / name).unlink()
    header = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    write(tmp_path / name, header + b"\x00" * 100, gz)
    data_error(tmp_path, "idx-too-large", "declares")
    # Under the limit but far more than a small gzip file can hold: truncated, at once.
    small = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 1_000_000, 28, 28)
    write(tmp_path / name, small + b"\x00" * 100, gz)
    data_error(tmp_path, "idx-truncated")


def test_gzip_bomb_stops_at_the_declared_size(tmp_path):
    arrays = make_idx_folder(tmp_path)
    name = "t10k-labels-idx1-ubyte"
    # The header says 5 labels, the stream inflates to 64 MiB of zeros (from ~64 KiB).
    bomb = gzip.compress(idx_bytes(arrays[name]) + bytes(64 << 20), compresslevel=9)
    assert len(bomb) < 100_000
    (tmp_path / name).unlink()
    (tmp_path / f"{name}.gz").write_bytes(bomb)
    data_error(tmp_path, "idx-trailing-data", "more data than its header declares")


def test_label_count_differs_from_image_count(tmp_path):
    make_idx_folder(tmp_path)
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(TEST + 1, np.uint8)))
    data_error(tmp_path, "idx-count-mismatch", f"{TEST} images", f"{TEST + 1} labels")


def test_labels_out_of_range(tmp_path):
    make_idx_folder(tmp_path)
    labels = np.zeros(TEST, np.uint8)
    labels[3] = 200  # no train label is above 2
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels))
    data_error(tmp_path, "idx-label-range", "outside 0..2", "sample 3")


def test_files_swapped_or_of_another_type(tmp_path):
    arrays = make_idx_folder(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(arrays["train-images-idx3-ubyte"]))
    data_error(tmp_path, "idx-wrong-kind", "rank 1")
    make_idx_folder(tmp_path)
    write(tmp_path / "train-images-idx3-ubyte",
          idx_bytes(arrays["train-images-idx3-ubyte"], code=0x0D))
    data_error(tmp_path, "idx-wrong-kind", "float32")


def test_train_and_test_images_of_different_sizes(tmp_path):
    make_idx_folder(tmp_path)
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(np.zeros((TEST, 5, 5), np.uint8)))
    data_error(tmp_path, "idx-size-mismatch", "5 x 5")


def test_an_unreadable_file(tmp_path):
    make_idx_folder(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.unlink()
    path.mkdir()  # a folder where the file should be: not a file, so it is missing
    data_error(tmp_path, "idx-files-missing", "train-images-idx3-ubyte")


def test_each_idx_file_name_is_one_of_the_four():
    assert sorted(IDX_FILES.values()) == sorted(
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte"])
