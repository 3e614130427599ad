"""The inspect verb as a library call: summary, data check and patch plans in one result."""

from __future__ import annotations

import numpy as np
import pytest

from edgepipe.analysis.inspection import InspectConfig, Inspection, inspect
from edgepipe.errors import DataError, UnsupportedError


def test_summary_alone_from_a_spec():
    inspection = inspect("builtin:digits-mlp")
    assert isinstance(inspection, Inspection)
    assert inspection.data is None and inspection.patch_plan is None
    document = inspection.to_dict()
    assert document["total_params"] == inspection.summary.total_params > 0
    assert not {"data", "support", "patch_plan"} & set(document)


def test_data_is_loaded_checked_and_split_by_the_verb(digits_mlp):
    loaded, _ = digits_mlp
    inspection = inspect(loaded, InspectConfig(data="builtin:digits", seed=2))
    checked = inspection.data
    assert checked is not None and checked.model_classes == 10
    assert checked.dataset.count == 1797 and checked.dataset.labelled
    assert checked.split.seed == 2
    assert checked.split.train_count + checked.split.eval_count == 1797
    document = inspection.to_dict()["data"]
    assert document["count"] == 1797 and document["split"]["seed"] == 2
    assert list(document)[-2:] == ["model_classes", "split"]


def test_data_that_does_not_fit_raises(digits_mlp):
    loaded, _ = digits_mlp
    labels_too_high = (np.zeros((10, 64), np.float32), np.full(10, 12))
    with pytest.raises(DataError) as raised:
        inspect(loaded, InspectConfig(data=labels_too_high))
    assert raised.value.reference == "labels-out-of-range"


def test_patch_plan_needs_an_image_model(digits_mlp):
    with pytest.raises(UnsupportedError) as raised:
        inspect(digits_mlp[0], InspectConfig(patch_plan=True))
    assert raised.value.reference == "patch-plan-unsupported"
