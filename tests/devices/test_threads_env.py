"""EDGEPIPE_THREADS is the runtime thread count wherever none is given; a bad value is an
error that names it."""

from __future__ import annotations

import os

import pytest

from edgepipe.errors import InputError
from edgepipe.runtime import default_threads, open_artifact
from edgepipe.runtime.base import THREADS_ENV


def test_the_variable_sets_the_default(monkeypatch, digits_artifacts):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert default_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(THREADS_ENV, "3")
    assert default_threads() == 3
    session = open_artifact(digits_artifacts / "digits-cnn.onnx")  # threads=None
    assert session.options["intra_op_num_threads"] == 3
    given = open_artifact(digits_artifacts / "digits-cnn.onnx", threads=1)  # given wins
    assert given.options["intra_op_num_threads"] == 1


@pytest.mark.parametrize("value", ["0", "-2", "four", "1.5"])
def test_a_bad_value_is_an_error(monkeypatch, value):
    monkeypatch.setenv(THREADS_ENV, value)
    with pytest.raises(InputError) as caught:
        default_threads()
    assert caught.value.reference == "bad-threads"
    assert THREADS_ENV in caught.value.message and THREADS_ENV in caught.value.hint
