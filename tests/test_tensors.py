"""Shape and input-option parsing."""

from __future__ import annotations

import numpy as np
import pytest

from edgepipe.errors import InputError, ShapeError
from edgepipe.tensors import TensorSpec, parse_input_option, parse_shape


def test_parse_shape_forms():
    assert parse_shape("1x3x224x224") == (1, 3, 224, 224)
    assert parse_shape("1,3,32,32") == (1, 3, 32, 32)
    assert parse_shape("-1x128", allow_dynamic=True) == ("dim0", 128)
    assert parse_shape("batchx128", allow_dynamic=True) == ("batch", 128)


@pytest.mark.parametrize("text", ["", "1x3xfoo", "1x0x4", "1x-1x4", "axb"])
def test_parse_shape_rejects(text):
    with pytest.raises(ShapeError) as info:
        parse_shape(text)
    assert "1x3x224x224" in info.value.hint


def test_input_option():
    spec = parse_input_option("input_ids:-1x128:int64")
    assert spec == TensorSpec("input_ids", ("dim0", 128), "int64")
    assert parse_input_option("x:1x8").dtype == "float32"
    with pytest.raises(InputError, match="Cannot read --input"):
        parse_input_option("1x8")
    with pytest.raises(InputError, match="Unknown dtype 'int7'"):
        parse_input_option("x:1x8:int7")


def test_concrete_shape_and_samples():
    spec = TensorSpec("ids", ("batch", 16), "int64")
    assert spec.concrete_shape(4) == (4, 16)
    assert spec.bytes(4) == 4 * 16 * 8
    a, b = spec.sample(2, seed=3), spec.sample(2, seed=3)
    assert a.dtype == np.int64 and np.array_equal(a, b)
    with pytest.raises(ShapeError, match="dynamic dimension 'seq'"):
        TensorSpec("ids", (1, "seq"), "int64").concrete_shape()


def test_a_dynamic_axis_fills_only_its_inputs_at_its_position():
    from edgepipe.tensors import DynamicAxis, sized

    axis = DynamicAxis("sequence", 1, ("input_ids", "attention_mask"), 128, 512)
    specs = [TensorSpec("input_ids", (1, "sequence"), "int64"),
             TensorSpec("attention_mask", (1, "dim1"), "int64"),  # OpenVINO names it dim1
             TensorSpec("pixels", ("batch", "dim1"))]
    assert [s.shape for s in sized(specs, [axis])] == [(1, 128), (1, 128), ("batch", "dim1")]
    assert DynamicAxis.from_dict(axis.to_dict()) == axis


@pytest.mark.parametrize("edit", [
    {"size": "abc"}, {"size": 0}, {"max": 8}, {"axis": True}, {"inputs": "input_ids"},
    {"inputs": [1]}, {"name": ""}, {"size": 1.5}])
def test_a_hand_edited_dynamic_axis_is_ignored(edit):
    from edgepipe.tensors import DynamicAxis

    recorded = {"name": "sequence", "axis": 1, "inputs": ["input_ids"], "size": 128, "max": 512}
    assert DynamicAxis.from_dict({**recorded, **edit}) is None
    assert DynamicAxis.from_dict("sequence") is None
