"""Compression configs: defaults, validation messages, and the JSON round trip."""

from __future__ import annotations

import json

import pytest

from edgepipe.compress import (
    METHODS,
    Fp16Config,
    Int8DynamicConfig,
    Int8StaticConfig,
    config_from_dict,
    make_config,
)
from edgepipe.errors import InputError


@pytest.mark.parametrize("config", [
    Int8StaticConfig(),
    Int8StaticConfig(calibration="entropy", per_channel=False, calib_size=64,
                     exclude=("node_gemm",), formats=("onnx",)),
    Int8DynamicConfig(reduce_range=True),
    Fp16Config(formats=("onnx", "openvino", "tflite")),
])
def test_configs_round_trip_through_json(config):
    document = json.loads(json.dumps(config.to_dict()))
    assert document["method"] == config.method
    assert config_from_dict(document) == config


def test_registry_names_every_method():
    assert set(METHODS) == {"int8", "int8-dynamic", "fp16", "w8a8", "w4a8", "w2a8", "lowrank",
                            "binary", "int4-weight"}
    assert Int8StaticConfig.needs_calibration and not Fp16Config.needs_calibration


def test_static_defaults_are_the_measured_choice():
    config = Int8StaticConfig()
    assert (config.calibration, config.per_channel, config.reduce_range, config.calib_size) == (
        "minmax", True, True, 256)
    assert config.formats == ("onnx",)


@pytest.mark.parametrize("options, reference, words", [
    ({"calibration": "kl"}, "bad-calibration", ["'kl'", "minmax, percentile, entropy"]),
    ({"calib_size": 0}, "bad-calib-size", ["--calib-size 0", "256"]),
    ({"percentile": 50.0}, "bad-percentile", ["50.0", "99.999"]),
    ({"formats": ("coreml",)}, "unknown-format", ["'coreml'", "onnx, tflite, openvino"]),
])
def test_bad_values_say_what_was_passed_and_what_to_pass(options, reference, words):
    with pytest.raises(InputError) as info:
        Int8StaticConfig(**options)
    error = info.value
    assert error.reference == reference and error.hint
    text = f"{error.message} {error.hint}"
    assert all(word in text for word in words), text


def test_an_option_of_another_method_is_refused():
    with pytest.raises(InputError) as info:
        make_config("fp16", calibration="entropy")
    assert info.value.reference == "option-not-for-method"
    assert "calibration" in info.value.message and "keep_io_types" in info.value.hint


def test_fp16_io_applies_to_onnx_only():
    assert Fp16Config(keep_io_types=False).formats == ("onnx",)
    with pytest.raises(InputError, match="ONNX only"):
        Fp16Config(formats=("onnx", "tflite"), keep_io_types=False)


def test_unknown_method_in_a_document():
    with pytest.raises(InputError) as info:
        config_from_dict({"method": "int3"})
    assert info.value.reference == "unknown-method" and "int8" in info.value.hint
