"""`edgepipe targets list | show | check` through the real CLI."""

from __future__ import annotations


def test_list_and_show(cli):
    listed = cli("targets", "list", "--json")
    assert listed.code == 0, listed
    names = {t["name"] for t in listed.json()["result"]["targets"]}
    assert {"stm32f746", "rpi5", "jetson-orin-nano", "host", "nrf52840"} <= names
    human = cli("targets", "list")
    assert "stm32f746" in human.stdout and "tflm" in human.stdout
    shown = cli("targets", "show", "rpi5", "--json")
    figures = {f["path"]: f for f in shown.json()["result"]["figures"]}
    assert figures["cpu.clock_mhz"]["value"] == 2400
    assert figures["cpu.clock_mhz"]["source"].startswith("datasheet")
    assert figures["power.active_w"]["source"].startswith("assumption")
    assert "rpi-product" in cli("targets", "show", "rpi5").stdout
    unknown = cli("targets", "show", "jetson-nano")
    assert unknown.code == 1 and "jetson-orin-nano" in unknown.stderr


def test_check_fits_and_require_fit(cli, tflite_models):
    fits = cli("targets", "check", tflite_models["int8"], "stm32f746", "--json")
    assert fits.code == 0, fits
    result = fits.json()["result"]
    assert result["fits"] is True and result["arena"]["verified"]
    human = cli("targets", "check", tflite_models["int8"], "stm32f746")
    assert "fits" in human.stdout and "estimated" in human.stdout
    too_big = cli("targets", "check", tflite_models["wide"], "stm32f746", "--json")
    assert too_big.code == 0 and too_big.json()["result"]["fits"] is False
    required = cli("targets", "check", tflite_models["wide"], "stm32f746", "--require-fit")
    assert required.code == 1 and "does-not-fit" in required.stderr
    refused = cli("targets", "check", tflite_models["fp16"], "stm32f746")
    assert refused.code == 1 and "tflm-refused" in refused.stderr and "int8" in refused.stderr
    not_mcu = cli("targets", "check", tflite_models["int8"], "rpi5")
    assert not_mcu.code == 1 and "not-an-mcu" in not_mcu.stderr
