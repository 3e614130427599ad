"""The device catalog: every file validates, unknown names get close matches, bad files
name the key that is wrong, and every datasheet figure points to a source."""

from __future__ import annotations

import shutil

import pytest

from edgepipe.devices.catalog import CATALOG_DIR, get_target, load_catalog, load_target_file
from edgepipe.errors import InputError, TargetError

DEVICES = {"stm32f746", "stm32h743", "nrf52840", "esp32s3", "rpi4b", "rpi5",
           "jetson-orin-nano", "jetson-agx-orin", "android-sd8gen2", "host"}


def test_every_catalog_file_validates():
    catalog = load_catalog(detect_host=False)
    assert set(catalog) >= DEVICES
    stm = catalog["stm32f746"]
    assert stm.kind == "mcu" and stm.memory.sram_bytes.value == 320 * 1024
    assert stm.memory.flash_bytes.value == 1024 * 1024
    assert stm.cpu.clock_mhz.value == 216


def _figures(node):
    """Every {value, kind, ...} figure in a nested document."""
    if isinstance(node, dict):
        if "value" in node and "kind" in node:
            yield node
        for value in node.values():
            yield from _figures(value)
    elif isinstance(node, list):
        for value in node:
            yield from _figures(value)


def test_datasheet_figures_name_a_source_that_exists():
    for target in load_catalog(detect_host=False).values():
        document = target.model_dump()
        sources = document.get("sources") or {}
        body = {k: v for k, v in document.items() if k != "sources"}
        for figure in _figures(body):
            if figure["kind"] in ("datasheet", "measured"):
                assert figure.get("source") in sources, (target.name, figure)


def test_unknown_target_lists_close_matches():
    with pytest.raises(TargetError) as caught:
        get_target("stm32f764")
    assert caught.value.reference == "unknown-target"
    assert "stm32f746" in caught.value.details["close_matches"]


def test_bad_file_names_the_key(tmp_path):
    text = (CATALOG_DIR / "rpi5.yaml").read_text()
    bad = tmp_path / "rpi5.yaml"
    bad.write_text(text + "\ncolour: red\n")
    with pytest.raises(InputError) as caught:
        load_target_file(bad)
    assert caught.value.reference == "bad-target-file" and "colour" in str(caught.value)
    wrong_name = tmp_path / "pi.yaml"
    shutil.copy(CATALOG_DIR / "rpi5.yaml", wrong_name)
    with pytest.raises(InputError, match="names itself"):
        load_target_file(wrong_name)
