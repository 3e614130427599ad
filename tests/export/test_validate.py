"""Parity metrics: the numbers and verdicts compare_outputs gives on known arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgepipe.errors import InputError
from edgepipe.export import DEFAULT_ATOL, ExportConfig, compare_outputs


def test_identical_outputs_pass_with_infinite_sqnr():
    ref = np.random.default_rng(0).standard_normal((4, 10)).astype(np.float32)
    report = compare_outputs([ref], [ref.copy()], ["logits"], atol=1e-4)
    out = report.outputs[0]
    assert report.passed and out.max_abs_diff == 0 and math.isinf(out.sqnr_db)
    assert out.top1_agreement == 1.0
    assert report.to_dict()["outputs"][0]["identical"] is True


def test_known_noise_gives_known_sqnr_and_fails_a_tight_tolerance():
    ref = np.ones((2, 100), dtype=np.float32)
    noisy = ref + 0.01  # noise power 1e-4 of the signal: 40 dB
    report = compare_outputs([ref], [noisy], ["y"], atol=1e-4)
    out = report.outputs[0]
    assert out.sqnr_db == pytest.approx(40.0, abs=1e-3)
    assert out.max_abs_diff == pytest.approx(0.01, rel=1e-4)
    assert not report.passed and "FAIL" in out.line()
    assert compare_outputs([ref], [noisy], ["y"], atol=0.02).passed


def test_tolerance_scales_with_large_outputs():
    ref = np.full((1, 3), 1000.0, dtype=np.float32)
    out = compare_outputs([ref], [ref + 0.05], ["y"], atol=1e-4).outputs[0]
    assert out.scale == 1000.0 and out.limit == pytest.approx(0.1)
    assert out.passed


def test_top1_agreement_counts_rows():
    ref = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    swapped = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    assert compare_outputs([ref], [swapped], ["y"], 1.0).outputs[0].top1_agreement == 0.5


def test_shape_mismatch_and_nan_fail_with_a_reason():
    ref = np.zeros((1, 4), dtype=np.float32)
    report = compare_outputs([ref, ref], [np.zeros((1, 5)), np.full((1, 4), np.nan)],
                             ["a", "b"], atol=1.0)
    assert not report.passed
    assert "shape" in report.outputs[0].error and "NaN" in report.outputs[1].error


def test_output_count_mismatch_fails():
    ref = np.zeros((1, 4), dtype=np.float32)
    assert not compare_outputs([ref, ref], [ref], ["a", "b"], atol=1.0).passed


def test_config_defaults_and_validation():
    assert ExportConfig().tolerance("fp32") == DEFAULT_ATOL["fp32"]
    assert ExportConfig().tolerance("fp16") == DEFAULT_ATOL["fp16"]
    assert ExportConfig(atol=0.5).tolerance("fp16") == 0.5
    assert ExportConfig(formats=("ONNX", "onnx", "tflite")).formats == ("onnx", "tflite")
    with pytest.raises(InputError, match="negative") as info:
        ExportConfig(atol=-1e-3)
    assert info.value.reference == "bad-tolerance" and info.value.hint
    with pytest.raises(InputError) as info:
        ExportConfig(formats=("coreml",))
    assert "onnx, tflite, openvino" in info.value.hint
