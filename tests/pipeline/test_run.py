"""``edgepipe run``: a recipe on the digits MLP, end to end, with the real runtimes; then the
cache (an unchanged re-run does nothing, an edit redoes only what it touches, a killed run
resumes) and a failing variant that does not stop the others."""

from __future__ import annotations

import json
import shutil

import pytest


def _ran(report: dict) -> list[str]:
    return sorted(s["step"] for s in report["steps"] if not s["cached"])


def test_the_report_holds_every_variant_measured_and_labelled(first_run):
    folder, report, log = first_run
    out = folder / "out"
    saved = json.loads((out / "report.json").read_text())
    assert saved["schema_version"] == 1 and saved["recipe"]["name"] == "digits-mlp"
    assert [v["name"] for v in saved["variants"]] == ["float", "int8"]
    assert report["summary"]["failed"] == [] and report["summary"]["steps_cached"] == 0
    float_onnx = saved["variants"][0]["result"]["artifacts"][0]
    assert float_onnx["accuracy"]["value"] >= 0.9 and float_onnx["accuracy"]["label"] == "measured"
    assert (out / float_onnx["path"]).is_file()
    int8 = {a["format"]: a for a in saved["variants"][1]["result"]["artifacts"]}
    assert set(int8) == {"onnx", "tflite"}
    for artifact in int8.values():
        # measured on the artifact in its runtime, within two points of the float model
        assert artifact["accuracy"]["value"] >= float_onnx["accuracy"]["value"] - 0.02
        assert artifact["size_bytes"] < 0.5 * float_onnx["size_bytes"]
        host, rpi5, mcu = (artifact["targets"][t] for t in ("host", "rpi5", "stm32f746"))
        assert host["latency_label"] == "measured" and 0 < host["latency_s"] < 0.05
        assert rpi5["latency_label"] == "estimated" and rpi5["latency_s"] > 0
        assert (out / host["profile"]).is_file()
    # a microcontroller takes the TFLite file only, checked by TFLite Micro itself
    assert int8["tflite"]["targets"]["stm32f746"]["fit"]["fits"] is True
    assert int8["onnx"]["targets"]["stm32f746"]["fit"]["fits"] is False
    for target in ("host", "rpi5", "stm32f746"):
        pick = report["recommendations"][target]
        assert pick["fastest"] is not None and pick["fastest"]["drop"] <= 0.02, pick
        assert pick["fastest"]["latency_label"] == ("measured" if target == "host"
                                                    else "estimated")
    assert report["recommendations"]["stm32f746"]["fastest"]["format"] == "tflite"
    html = (out / "report.html").read_text()
    assert html.count("<svg") >= 4 and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in html and "Recommended for" in html
    markdown = (out / "report.md").read_text()
    assert "| int8 | tflite | int8 |" in markdown and "**Recommended:**" in markdown
    assert "✓ build float" in log and "✓ profile int8 tflite on stm32f746" in log


def test_an_unchanged_rerun_does_nothing_and_an_edit_only_what_it_touches(cli, first_run,
                                                                          tmp_path, recipe_text):
    folder, _, _ = first_run
    out = tmp_path / "out"
    shutil.copytree(folder / "out", out)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(recipe_text)
    again = cli("run", recipe, "-o", out, "--json")
    assert again.code == 0, again
    assert _ran(again.json()["result"]) == [] and "unchanged, reused" in again.stderr
    # a new calibration for int8 only: its build and its profiles run again, float's do not
    recipe.write_text(recipe_text.replace("    formats: [onnx, tflite]\n",
                                     "    formats: [onnx, tflite]\n"
                                     "    options: {calibration: percentile}\n"))
    edited = cli("run", recipe, "-o", out, "--json")
    assert edited.code == 0, edited
    ran = _ran(edited.json()["result"])
    # profiles are keyed by the artifact's sha256: the ONNX file changed with the
    # calibration, so its profiles ran again (LiteRT's quantizer has its own calibration:
    # its file came out the same, and its profiles were reused)
    assert ran[-1] == "variant.int8" and {s for s in ran if ".onnx." in s} == {
        f"profile.int8.onnx.model.{t}" for t in ("host", "rpi5", "stm32f746")}
    assert all(s.startswith("profile.int8.") for s in ran[:-1])
    config = edited.json()["result"]["variants"][1]["config"]
    assert config["options"] == {"calibration": "percentile"}


def test_a_killed_run_resumes_and_a_failed_variant_does_not_stop_the_others(cli, first_run,
                                                                            tmp_path,
                                                                            recipe_text):
    folder, _, _ = first_run
    out = tmp_path / "out"
    shutil.copytree(folder / "out", out)
    # as a kill leaves it: one profile never recorded, a build's half-written folder
    (out / ".cache" / "profile.int8.tflite.model.host.json").unlink()
    (out / "variants" / ".broken.partial").mkdir()
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(recipe_text.replace("targets:", "  - name: broken\n    method: split\n"
                                     "    at: nowhere\n    bottleneck: 2\ntargets:"))
    result = cli("run", recipe, "-o", out, "--json")
    assert result.code == 3, result  # partly done: the report is written
    report = json.loads((out / "report.json").read_text())
    assert _ran(report) == ["profile.int8.tflite.model.host", "variant.broken"]
    broken = report["variants"][2]
    assert broken["status"] == "failed" and "nowhere" in broken["error"]["message"]
    assert broken["error"]["hint"]
    assert [v["status"] for v in report["variants"][:2]] == ["ok", "ok"]
    assert not (out / "variants" / ".broken.partial").exists()
    assert not (out / "variants" / "broken").exists()
    assert "broken" in (out / "report.html").read_text()
    assert "1 variant(s) failed" in result.stderr


SPLIT_RECIPE = """\
name: split
model: {spec: builtin:digits-cnn}
data: {spec: builtin:digits}
variants:
  - name: cut
    method: split
    at: pool2
    bottleneck: 4
    bandwidth: 5Mbps
    rtt: 10ms
    options: {distill_epochs: 10, finetune_epochs: 5}
  - name: coded
    method: split
    at: pool2
    bottleneck: 4
    entropy: true
    rate_weight: 1.0e-3
    bandwidth: 5Mbps
    rtt: 10ms
    options: {distill_epochs: 6, finetune_epochs: 3}
targets: [host, stm32f746]
profile: {runs: 5, duration: 0.05, warmup: 2, per_layer: false}
"""


def test_a_split_variant_gets_its_plan_per_device(cli, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(SPLIT_RECIPE)
    result = cli("run", recipe, "-o", tmp_path / "out", "--json")
    assert result.code == 0, result
    variant, coded = result.json()["result"]["variants"]
    roles = {a["role"]: a for a in variant["result"]["artifacts"]}
    head = roles["head"]
    assert head["split"]["bytes_per_sample"] == 4 * 8 * 8
    assert head["split"]["coding"] == "packed"
    # the entropy-coded variant: what crosses is the bitstream, its mean length as split says
    coded_head = next(a for a in coded["result"]["artifacts"] if a["role"] == "head")
    written = json.loads((tmp_path / "out" / "variants" / "coded" / "manifest.json")
                         .read_text())
    bitstream = next(s for s in written["steps"] if s["step"] == "split")["result"][
        "bytes_per_sample"]["bitstream_bytes_mean"]
    assert coded_head["split"]["coding"] == "entropy"
    assert coded_head["split"]["bytes_per_sample"] == pytest.approx(bitstream)
    assert bitstream < 4 * 8 * 8 and "range-coded bitstream" in coded_head["accuracy"]["on"]
    # end to end (head -> codes -> tail in ONNX Runtime) within 3 points of the original
    assert head["accuracy"]["value"] >= head["float_accuracy"] - 0.03
    assert "targets" not in roles["tail"]  # the tail runs on the server
    host, mcu = variant["plans"]["host"], variant["plans"]["stm32f746"]
    for plan in (host, mcu):
        options = {o["option"]: o for o in plan["options"]}
        row = options["cut pool2 (bottleneck)"]
        assert row["bytes"] == 256 and plan["link"] == {"bandwidth_bps": 5e6, "rtt_s": 0.01}
        assert row["end_to_end_s"] == pytest.approx(
            row["head_s"] + 256 * 8 / 5e6 + 0.01 + row["tail_s"])
    # here both ends are this machine: the split's own head and tail were profiled
    assert host["options"][-1]["sources"] == {"head": "measured", "tail": "measured"}
    assert dict(row["sources"]) == {"head": "estimated", "tail": "measured"}
    # the split folder is a split run: serve and split run take it as it is
    manifest = json.loads((tmp_path / "out" / "variants" / "cut" / "manifest.json").read_text())
    assert [s["step"] for s in manifest["steps"]].count("split") == 1  # written by the verb
    html = (tmp_path / "out" / "report.html").read_text()
    # per plan: device, server (zlib input), raw 8-bit, bottleneck, and the fastest PNG,
    # JPEG and WebP setting within the accuracy slack (input codecs measured on the data)
    assert "the split plan" in html and html.count('class="series"') == 2 * 2 * (4 + 3)
    assert "(bitstream, mean)" in html
    assert "input as WebP" in html and any("codec" in o for o in host["options"])


def test_a_run_killed_mid_step_resumes_from_what_finished(tmp_path, recipe_text):
    """SIGKILL while the int8 variant builds (after float finished): nothing half-written
    is used, and the next run redoes only what had not finished."""
    import os
    import signal
    import subprocess
    import sys
    import time

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(recipe_text)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "edgepipe", "run", str(recipe), "-o", str(out), "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (out / "variants" / ".int8.partial").exists():
            assert process.poll() is None, process.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the int8 build never started"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(30)
    assert not (out / "report.json").exists()
    assert not (out / "variants" / "int8").exists()
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    report = json.loads(resumed.stdout)["result"]
    ran = _ran(report)
    assert "variant.float" not in ran and "variant.int8" in ran
    assert [v["status"] for v in report["variants"]] == ["ok", "ok"]
    assert not list((out / "variants").glob(".*"))


def test_a_full_disk_fails_cleanly_and_the_run_resumes_with_space(cli, tmp_path, recipe_text):
    """OUT on a 160 kB tmpfs: the steps that do not fit fail with the disk's error, nothing
    half-written is left, and with space the same command finishes the job."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text(recipe_text)
        out = mount / "out"
        full = cli("run", recipe, "-o", out)
        assert full.code == 3, full  # partly done: float made, the rest failed
        assert "No space left on device" in full.stderr
        leftovers = [p for p in out.rglob(".*") if p.name not in (".cache", ".manifest.lock")]
        assert not leftovers, leftovers
        for path in out.rglob("*.json"):
            json.loads(path.read_text())  # every JSON file there is whole
        subprocess.run(["mount", "-o", "remount,size=50m", str(mount)], check=True)
        resumed = cli("run", recipe, "-o", out, "--json")
        assert resumed.code == 0, resumed
        report = resumed.json()["result"]
        assert [v["status"] for v in report["variants"]] == ["ok", "ok"]
        assert report["summary"]["steps_failed"] == 0
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


# the shared digits-MLP recipe (conftest.RECIPE) with ExecuTorch variants and two targets
PTE_VARIANTS = """\
variants:
  - name: float
    method: float
    formats: [executorch, onnx]
  - name: int8
    method: int8
    formats: [executorch]
targets: [host, rpi5]
"""


def test_a_recipe_builds_measures_and_recommends_pte_files(cli, tmp_path, recipe_text):
    pytest.importorskip("executorch")
    variants = recipe_text[recipe_text.index("variants:"):recipe_text.index("budget:")]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(recipe_text.replace(variants, PTE_VARIANTS))
    out = tmp_path / "out"
    result = cli("run", recipe, "-o", out, "--json")
    assert result.code == 0, result
    report = result.json()["result"]
    float_variant, int8_variant = report["variants"]
    formats = {a["format"]: a for a in float_variant["result"]["artifacts"]}
    assert set(formats) == {"executorch", "onnx"}
    (pte,) = int8_variant["result"]["artifacts"]
    assert pte["format"] == "executorch" and pte["path"].endswith(".pte")
    for artifact in (formats["executorch"], pte):
        # accuracy measured on the .pte in ExecuTorch's runtime, within budget of the float
        assert artifact["accuracy"]["label"] == "measured"
        assert artifact["accuracy"]["value"] >= formats["onnx"]["accuracy"]["value"] - 0.02
        host = artifact["targets"]["host"]
        assert host["latency_label"] == "measured" and (out / host["profile"]).is_file()
        assert artifact["targets"]["rpi5"]["latency_label"] == "estimated"
    assert pte["size_bytes"] < 0.5 * formats["executorch"]["size_bytes"]
    assert report["recommendations"]["host"]["fastest"] is not None
    assert "| int8 | executorch | int8 |" in (out / "report.md").read_text()
