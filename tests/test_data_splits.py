"""Seeded splits: deterministic, disjoint, stratified, and pinned to the bundled records."""

from __future__ import annotations

import numpy as np
import pytest

from edgepipe.data import Dataset, SplitsInfo, load_data, make_splits
from edgepipe.errors import DataError


def labelled(n: int = 100, classes: int = 4) -> Dataset:
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    return Dataset({"x": x}, np.arange(n, dtype=np.int64) % classes, source="test")


def test_split_is_deterministic_disjoint_and_stratified():
    data = load_data("builtin:digits")
    first, again, other = make_splits(data, seed=0), make_splits(data, seed=0), make_splits(data, seed=1)
    for name in ("train_indices", "calib_indices", "eval_indices"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.eval_indices, other.eval_indices)
    assert not set(first.eval_indices) & set(first.train_indices)
    assert len(first.train) + len(first.eval) == len(data)
    assert set(first.calib_indices) <= set(first.train_indices) and len(first.calib) == 256
    per_class = np.bincount(first.eval.labels) / np.bincount(data.labels)
    assert np.all(np.abs(per_class - 0.2) < 0.01)
    assert first.describe().eval_sha256 == again.describe().eval_sha256


def test_split_pins_the_seed_zero_indices():
    # The bundled models' records name this split; a change here would silently move them.
    from edgepipe.zoo import training_record

    parts = make_splits(load_data("builtin:digits"), seed=0)
    recorded = training_record("digits-cnn")["data"]["split"]
    assert parts.describe().to_dict() == recorded
    assert SplitsInfo.from_dict(recorded) == parts.describe()


def test_split_without_labels_and_small_calib():
    data = Dataset({"x": np.zeros((10, 2), np.float32)})
    parts = make_splits(data, seed=3, eval_fraction=0.3, calib_size=4)
    assert (len(parts.train), len(parts.calib), len(parts.eval)) == (7, 4, 3)


def test_split_rejects_bad_arguments():
    with pytest.raises(DataError, match="eval_fraction"):
        make_splits(labelled(), eval_fraction=1.0)
    with pytest.raises(DataError, match="calib_size"):
        make_splits(labelled(), calib_size=-1)
