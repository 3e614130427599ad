"""The report in a real browser: headless Chromium (Debian's package, driven through its
chromedriver) opens report.html from disk, with the network off; every chart is drawn with
a non-zero size, every data mark is on the page, and the console has no errors.

Skips where Chromium is not installed, unless EDGEPIPE_REQUIRE_BROWSER=1 (set by .ci/run,
which installs it), where a missing browser fails."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def browser():
    if not (Path(CHROMIUM).is_file() and Path(DRIVER).is_file()):
        if os.environ.get("EDGEPIPE_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium and chromedriver are required here (apt-get install "
                        "chromium chromium-driver)")
        pytest.skip("no Chromium here (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900",
                     # offline: any fetch the page tried would fail and show in the console
                     "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"):
        options.add_argument(argument)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def test_the_report_draws_its_charts_in_chromium(first_run, tmp_path):
    folder, report, _ = first_run
    driver = browser()
    try:
        driver.get((folder / "out" / "report.html").as_uri())
        charts = driver.execute_script("""
            return Array.from(document.querySelectorAll('svg')).map(svg => {
              const box = svg.getBoundingClientRect();
              const marks = Array.from(svg.querySelectorAll('circle.point, rect.bar, polyline.series'));
              return {label: svg.getAttribute('aria-label'), width: box.width,
                      height: box.height, marks: marks.length,
                      drawn: marks.filter(m => {const b = m.getBoundingClientRect();
                                                return b.width > 0 && b.height > 0;}).length};
            });""")
        log = driver.get_log("browser")
        title = driver.title
    finally:
        driver.quit()
    assert title.startswith("digits-mlp")
    by_label = {c["label"]: c for c in charts}
    # one mark per whole-model artifact profiled on the target: float onnx, int8 x2; the
    # MCU runs the int8 .tflite only (ONNX files are not estimated there)
    for target, marks in (("host", 3), ("rpi5", 3), ("stm32f746", 1)):
        chart = by_label[f"accuracy vs latency on {target}"]
        assert chart["marks"] == marks, chart
    assert "accuracy vs size" in by_label
    for chart in charts:
        assert chart["width"] > 100 and chart["height"] > 50, chart
        assert chart["marks"] >= 1 and chart["drawn"] == chart["marks"], chart
    errors = [entry for entry in log if entry["level"] == "SEVERE"]
    assert not errors, json.dumps(errors, indent=1)
