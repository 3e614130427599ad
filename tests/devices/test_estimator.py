"""The roofline estimator: its formula, the MCU path and the calibration it quotes."""

from __future__ import annotations

import numpy as np
import pytest

from edgepipe.analysis.inspect import inspect_model
from edgepipe.devices.catalog import get_target
from edgepipe.devices.estimator import (
    Constants,
    calibration,
    estimate,
    layer_arrays,
    roofline_seconds,
)
from edgepipe.errors import TargetError
from edgepipe.model import load_model


@pytest.fixture(scope="module")
def digits_summary():
    return inspect_model(load_model("builtin:digits-cnn"))


def test_roofline_by_hand():
    arrays = (np.array([1e9, 0.0]), np.array([1e6, 4e9]), np.array([0.0, 8e9]),
              np.array([1.0, 1.0]))
    constants = Constants(compute_efficiency=0.5, weight_bandwidth=0.25,
                          activation_bandwidth=2.0, overhead_op_s=1e-3, overhead_call_s=0.5)
    # layer 1: compute 1e9 / (0.5 x 1e10) = 0.2 s beats memory 1e6 / 2.5e9; layer 2: memory
    # 4e9 / (0.25 x 1e10) + 8e9 / (2 x 1e10) = 2.0 s; 1 ms per op; 0.5 s per call.
    assert roofline_seconds(arrays, 1e10, 1e10, constants) == pytest.approx(
        0.2 + 2.0 + 2e-3 + 0.5)


def test_layer_arrays_follow_the_graph(digits_summary):
    macs, weights, activations, ops = layer_arrays(digits_summary, "fp32")
    assert macs.sum() == digits_summary.total_macs
    assert weights.sum() == 4 * sum(layer.params for layer in digits_summary.layers)
    int8 = layer_arrays(digits_summary, "int8")
    assert int8[1].sum() == pytest.approx(weights.sum() / 4)  # one byte an element, not four
    assert int8[2].sum() == pytest.approx(activations.sum() / 4)
    assert ops.sum() <= len(digits_summary.layers)


def test_estimates_scale_with_the_target(digits_summary):
    rpi4 = estimate(digits_summary, get_target("rpi4b"), "fp32")
    orin = estimate(digits_summary, get_target("jetson-agx-orin"), "fp32")
    assert rpi4.label == "estimated" and "roofline" in rpi4.model
    assert orin.latency_s < rpi4.latency_s
    assert rpi4.calibration["note"]  # unvalidated off the host, and says so
    assert rpi4.to_dict()["label"] == "estimated"


def test_mcu_uses_cycles_per_mac(digits_summary):
    target = get_target("stm32f746")
    result = estimate(digits_summary, target, "int8")
    expected = digits_summary.total_macs * 1.73 / 216e6
    assert result.latency_s == pytest.approx(expected)
    assert "cycles/MAC" in result.model
    assert result.energy.joules_per_inference == pytest.approx(expected * 0.33)
    assert result.to_dict()["energy"]["label"] == "estimated"


def test_calibration_is_the_benchmarks():
    stored = calibration()
    assert "benchmarks/estimator.py" in stored.how
    assert stored.error["models"] >= 10 and "leave-one-out" in stored.error_summary
    # Above 1 where the CPU boosts past the clock the host figure is derived from.
    assert 0 < stored.constants.compute_efficiency < 2
    assert stored.to_dict()["constants"]["compute_efficiency"] == \
        stored.constants.compute_efficiency


def test_target_without_figures_cannot_be_estimated(digits_summary):
    target = get_target("rpi5").model_copy(update={"peak_gmacs": {}})
    with pytest.raises(TargetError, match="cannot be estimated"):
        estimate(digits_summary, target, "fp32")
