"""TFLite Micro on the host: arena, operators, fit against the catalog, and the refusals."""

from __future__ import annotations

import pytest

from edgepipe.devices.fit import check_fit, require_fit
from edgepipe.devices.tflm import measure_arena, model_ops, op_macs, tflm_kernels
from edgepipe.errors import InputError, TargetError, UnsupportedError


def test_kernels_come_from_the_runtime():
    kernels = tflm_kernels()
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D"} <= kernels
    assert len(kernels) > 80


def test_int8_digits_fits_an_stm32f746(tflite_models):
    result = check_fit(tflite_models["int8"], "stm32f746").to_dict()
    assert result["fits"] and result["precision"] == "int8"
    arena = result["arena"]
    assert 5_000 < arena["arena_bytes"] < 100_000 and arena["verified"]
    assert arena["verified_arena_bytes"] == arena["arena_bytes"]  # the reported size suffices
    assert result["operators"]["unsupported"] == []
    assert "CONV_2D" in result["operators"]["used"]
    size = tflite_models["int8"].stat().st_size
    assert result["flash"]["need_bytes"] == size + 102400
    assert result["sram"]["margin_bytes"] == 327680 - result["sram"]["need_bytes"]
    # 3 convolutions + fc of the digits CNN: conv MACs from the flatbuffer's shapes
    assert 2_000_000 < result["macs"] < 4_000_000
    estimate = result["estimate"]
    assert estimate["label"] == "estimated"
    assert estimate["latency_s"] == pytest.approx(result["macs"] * 1.73 / 216e6)


def test_float_model_needs_a_bigger_arena_and_warns(tflite_models):
    int8 = check_fit(tflite_models["int8"], "stm32f746").arena["arena_bytes"]
    fp32 = check_fit(tflite_models["fp32"], "stm32f746").to_dict()
    assert fp32["precision"] == "fp32" and fp32["arena"]["arena_bytes"] > 2 * int8
    assert any("float32" in w for w in fp32["warnings"])


def test_a_model_too_big_for_flash(tflite_models):
    result = check_fit(tflite_models["wide"], "stm32f746")
    assert result.fits is False and result.flash.fits is False
    assert result.to_dict()["flash"]["margin_bytes"] < 0
    assert any(reason.startswith("flash needs") for reason in result.reasons)
    with pytest.raises(TargetError) as error:
        require_fit(result)
    assert error.value.reference == "does-not-fit"


def test_fp16_is_refused_with_the_reason(tflite_models):
    with pytest.raises(UnsupportedError) as error:
        check_fit(tflite_models["fp16"], "stm32f746")
    assert error.value.reference == "tflm-refused" and "int8" in error.value.hint


def test_bad_targets_and_files(tflite_models, tmp_path):
    with pytest.raises(TargetError, match="not a microcontroller"):
        check_fit(tflite_models["int8"], "rpi5")
    with pytest.raises(TargetError) as unknown:
        check_fit(tflite_models["int8"], "stm32f74")
    assert "stm32f746" in unknown.value.hint
    with pytest.raises(InputError, match="not a .tflite"):
        check_fit(tmp_path / "model.onnx", "stm32f746")


def test_op_macs_by_hand():
    conv = {"op": "CONV_2D", "inputs": [[1, 8, 8, 3], [16, 3, 3, 3], [16]],
            "outputs": [[1, 8, 8, 16]]}
    depthwise = {"op": "DEPTHWISE_CONV_2D", "inputs": [[1, 8, 8, 16], [1, 3, 3, 16]],
                 "outputs": [[1, 8, 8, 16]]}
    fc = {"op": "FULLY_CONNECTED", "inputs": [[1, 64], [10, 64]], "outputs": [[1, 10]]}
    assert op_macs(conv) == 8 * 8 * 16 * 27
    assert op_macs(depthwise) == 8 * 8 * 16 * 9
    assert op_macs(fc) == 640
    assert op_macs({"op": "ADD", "inputs": [], "outputs": []}) == 0


def test_arena_of_the_ops_listing(tflite_models):
    data = tflite_models["int8"].read_bytes()
    assert [op["op"] for op in model_ops(data)].count("CONV_2D") == 3
    assert measure_arena(data)["verified"]
