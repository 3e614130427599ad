"""``edgepipe run``: a recipe on the digits MLP, end to end, with the real runtimes; then the
cache (an unchanged re-run does nothing, an edit redoes only what it touches, a killed run
resumes) and a failing variant that does not stop the others."""

from __future__ import annotations

import json
import shutil


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
    assert result.code == 1, result
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
