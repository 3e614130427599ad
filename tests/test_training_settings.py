"""The training settings compress's methods and split share: one set of names, one check."""

from __future__ import annotations

import dataclasses
import math

import pytest

from edgepipe.compress.config import config_class
from edgepipe.errors import InputError
from edgepipe.split.train import SplitTraining
from edgepipe.training_settings import TRAINING_LIMITS, DistillSettings


def test_compress_and_split_use_the_same_names():
    shared = {f.name for f in dataclasses.fields(DistillSettings)}
    assert shared == set(TRAINING_LIMITS)
    split = {f.name for f in dataclasses.fields(SplitTraining)}
    assert shared <= split
    for method in ("binary", "lowrank", "w4a8"):
        assert shared <= {f.name for f in dataclasses.fields(config_class(method))}


@pytest.mark.parametrize("name, value", [("lr", 0.0), ("distill_temperature", -1.0),
                                         ("distill_weight", 1.5), ("val_fraction", math.nan),
                                         ("batch_size", 0), ("patience", 2.5)])
def test_out_of_range_is_refused_the_same_way(name, value):
    with pytest.raises(InputError) as split_error:
        SplitTraining(**{name: value})
    assert split_error.value.reference == "bad-training-option"
    assert f"--{name.replace('_', '-')}" in split_error.value.message
    with pytest.raises(InputError) as compress_error:
        config_class("binary")(**{name: value})
    assert compress_error.value.reference == "bad-training-option"


def test_old_spellings_still_read_with_a_warning():
    with pytest.warns(FutureWarning, match="'kd_weight' is now 'distill_weight'"):
        training = SplitTraining.from_options({"kd_weight": 0.25, "temperature": 2.0})
    assert (training.distill_weight, training.distill_temperature) == (0.25, 2.0)
    assert "kd_weight" not in training.to_dict()
