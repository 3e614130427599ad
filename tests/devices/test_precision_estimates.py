"""Estimates follow the artifact: an int8 model uses the catalog's int8 figures, and a
format the target has no runtime for is refused ("cannot run this format there") instead
of estimated."""

from __future__ import annotations

import pytest

from edgepipe.analysis.inspect import inspect_model
from edgepipe.devices.catalog import get_target
from edgepipe.devices.estimator import estimate, mcu_estimate, per_layer_seconds
from edgepipe.devices.fit import check_fit
from edgepipe.devices.runtimes import check_runs_there, runnable_formats, target_runtimes
from edgepipe.errors import TargetError
from edgepipe.model import load_model
from edgepipe.profiling.profile import profile_artifact
from edgepipe.profiling.runner import LatencySettings

QUICK = LatencySettings(runs=2, duration_s=0, warmup_runs=0, warmup_s=0, per_layer=False,
                        energy=False)


def test_int8_on_an_mcu_without_cycles_uses_the_int8_peak():
    nrf = get_target("nrf52840")
    assert nrf.mcu.cycles_per_mac_int8 is None
    macs = 1_280_000
    int8 = mcu_estimate(nrf, macs, "int8")
    assert int8.latency_s == pytest.approx(macs / 0.128e9)  # 64 MHz x 2 MAC/cycle
    assert "peak int8 0.128 GMAC/s" in int8.model and "int8 kernels" in int8.model
    assert int8.bound == "lower"
    fp32 = mcu_estimate(nrf, macs, "fp32")
    assert fp32.latency_s == pytest.approx(macs / 0.064e9)
    assert "peak fp32" in fp32.model and "reference float kernels" in fp32.model
    # the per-layer times the report shows add up to the same figure
    summary = inspect_model(load_model("builtin:digits-cnn"))
    assert per_layer_seconds(summary, nrf, "int8").sum() == pytest.approx(
        estimate(summary, nrf, "int8").latency_s)


def test_targets_check_estimates_an_int8_model_with_int8_figures(tflite_models):
    result = check_fit(tflite_models["int8"], "nrf52840")
    assert result.precision == "int8"
    assert result.estimate.latency_s == pytest.approx(result.macs / 0.128e9)
    assert "peak int8" in result.estimate.model and "float" not in result.estimate.model


def test_the_formats_each_target_runs():
    assert target_runtimes(get_target("esp32s3"))[0] == "litert"  # tflite-micro (ESP-NN)
    assert [f.name for f in runnable_formats(get_target("stm32f746"))] == ["tflite"]
    assert {f.name for f in runnable_formats(get_target("rpi5"))} == {
        "onnx", "tflite", "openvino", "executorch", "pt2"}
    phone = {f.name for f in runnable_formats(get_target("android-sd8gen2"))}
    assert "openvino" not in phone and "pt2" not in phone and "executorch" in phone
    check_runs_there(get_target("rpi5"), "openvino", "m.xml")
    with pytest.raises(TargetError) as caught:
        check_runs_there(get_target("stm32f746"), "onnxruntime", "m.int8.onnx")
    error = caught.value
    assert error.reference == "format-not-on-target"
    assert error.message.startswith("Cannot run this format there: m.int8.onnx is ONNX (run by "
                                 "ONNX Runtime), and stm32f746 runs only tflite-micro")
    assert "TFLite (.tflite)" in error.hint and error.details["formats"] == ["tflite"]


def test_profile_refuses_a_format_the_mcu_cannot_run(digits_artifacts):
    with pytest.raises(TargetError) as caught:
        profile_artifact(digits_artifacts / "digits-cnn.onnx", "stm32f746", QUICK)
    assert caught.value.reference == "format-not-on-target"
    with pytest.raises(TargetError, match="Cannot run this format there"):
        profile_artifact(digits_artifacts / "digits-cnn.xml", "jetson-orin-nano", QUICK)
    float_tflite = profile_artifact(digits_artifacts / "digits-cnn.tflite", "stm32f746", QUICK)
    assert float_tflite.mode == "estimated"
    assert "peak fp32" in float_tflite.to_dict()["latency"]["model"]


def test_profile_estimates_int8_with_int8_figures(tflite_models):
    # manifest.json says int8: the Cortex-M7's CMSIS-NN cycles per MAC ...
    stm = profile_artifact(tflite_models["int8"], "stm32f746", QUICK).to_dict()
    assert "cycles/MAC" in stm["latency"]["model"] and "bound" not in stm["latency"]
    # ... and the nRF52840's int8 peak, where no cycles figure is known
    nrf = profile_artifact(tflite_models["int8"], "nrf52840", QUICK).to_dict()
    assert "peak int8" in nrf["latency"]["model"] and nrf["latency"]["bound"] == "lower"
