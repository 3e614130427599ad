"""Digits models with their seeded splits, shared by the compression tests."""

from __future__ import annotations

import pytest

from edgepipe.data import load_data_for_model, split
from edgepipe.model import load_model


def _digits(name: str):
    loaded = load_model(f"builtin:{name}")
    dataset = load_data_for_model("builtin:digits", loaded.inputs)
    return loaded, split(dataset, seed=0, calib_size=256)


@pytest.fixture(scope="session")
def digits_cnn():
    """builtin:digits-cnn and builtin:digits split (calib 256 from train, eval 359)."""
    return _digits("digits-cnn")


@pytest.fixture(scope="session")
def digits_mlp():
    return _digits("digits-mlp")
