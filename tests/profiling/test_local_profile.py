"""Profiles measured on this machine through the agent, in each runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgepipe.errors import EdgepipeError, InputError, TargetError
from edgepipe.profiling.profile import profile
from edgepipe.profiling.runner import LatencySettings

QUICK = LatencySettings(runs=30, duration_s=0.2, warmup_runs=3, warmup_s=0.05, threads=1,
                        layer_runs=3)


def _check_latency(doc: dict, runs: int) -> None:
    steady = doc["latency"]["steady"]
    assert doc["mode"] == "measured" and doc["latency"]["label"] == "measured"
    assert steady["count"] >= runs and len(steady["raw_s"]) == steady["count"]
    assert 0 < steady["min_s"] <= steady["p50_s"] <= steady["p90_s"] <= steady["p99_s"] \
        <= steady["max_s"]
    assert steady["mean_s"] == pytest.approx(float(np.mean(steady["raw_s"])), rel=1e-9)
    assert doc["latency"]["load_s"] > 0 and doc["latency"]["first_inference_s"] > 0


@pytest.mark.parametrize("name, runtime", [("digits-cnn.onnx", "onnxruntime"),
                                           ("digits-cnn.xml", "openvino"),
                                           ("digits-cnn.tflite", "litert")])
def test_each_runtime_gives_the_full_block(digits_artifacts, name, runtime):
    doc = profile(digits_artifacts / name, "host", QUICK).to_dict()
    _check_latency(doc, QUICK.runs)
    assert doc["artifact"]["runtime"] == runtime == doc["runtime"]["name"]
    assert doc["runtime"]["threads"] == 1
    memory = doc["memory"]
    assert memory["artifact_size_bytes"]["value"] > 50_000
    assert memory["peak_rss_bytes"]["label"] == "measured"
    # A fresh process: its peak is far below a process that imported torch (>300 MB).
    assert 0 < memory["peak_rss_increase_bytes"]["value"] < memory["peak_rss_bytes"]["value"]
    assert memory["peak_rss_bytes"]["value"] < 300 << 20
    assert memory["peak_activation_bytes"]["value"] > 0
    energy = doc["energy"]  # no sensor is readable on CI machines: an estimate, said so
    if energy["label"] != "measured":
        assert energy["label"] == "estimated" and "host power.active_w" in energy["model"]
        assert "no readable energy sensor" in energy["not_measured_because"]
        assert energy["joules_per_inference"] == pytest.approx(
            doc["latency"]["steady"]["p50_s"] * doc["energy"]["model_power_w"])
    assert doc["inputs"]["kind"] == "random"


def test_per_layer_tables_come_from_the_runtimes(digits_artifacts):
    onnx = profile(digits_artifacts / "digits-cnn.onnx", "host", QUICK).to_dict()["layers"]
    assert "onnxruntime profiler" in onnx["source"]
    assert any(row["op_type"] == "Conv" for row in onnx["rows"])
    assert sum(row["share"] for row in onnx["rows"]) == pytest.approx(1.0)
    times = [row["median_us"] for row in onnx["rows"]]
    assert times == sorted(times, reverse=True) and times[0] > 0
    ov = profile(digits_artifacts / "digits-cnn.xml", "host", QUICK).to_dict()
    assert any(row["op_type"] == "Convolution" for row in ov["layers"]["rows"])
    own = ov["latency"]["runtime_reported"]
    # OpenVINO's own timer runs inside our wall-clock window: never longer than it.
    assert 0 < own["p50_s"] <= ov["latency"]["steady"]["p50_s"] * 1.05


def test_duration_floor_and_real_data(digits_artifacts):
    settings = LatencySettings(runs=1, duration_s=0.3, warmup_runs=0, warmup_s=0, threads=1,
                               per_layer=False)
    doc = profile(digits_artifacts / "digits-cnn.onnx", "host", settings,
                  data="builtin:digits").to_dict()
    assert sum(doc["latency"]["steady"]["raw_s"]) >= 0.3 * 0.9
    assert doc["latency"]["steady"]["count"] > 1
    assert doc["inputs"]["kind"] == "data" and doc["inputs"]["shapes"] == [[1, 3, 32, 32]]
    assert "layers" not in doc or doc["layers"] is None


def test_estimated_target_is_labelled_with_its_model(digits_artifacts):
    doc = profile(digits_artifacts / "digits-cnn.tflite", "rpi5", QUICK).to_dict()
    assert doc["mode"] == "estimated" and doc["latency"]["label"] == "estimated"
    assert doc["latency"]["steady"]["p50_s"] > 0
    assert "roofline" in doc["latency"]["model"]
    # The graph came from the ONNX artifact of the same source, named in the profile.
    assert "digits-cnn.onnx" in doc["memory"]["peak_activation_bytes"]["model"]
    energy = doc["energy"]
    assert energy["label"] == "estimated" and "rpi5.yaml" in energy["model"]
    assert energy["joules_per_inference"] == pytest.approx(
        doc["latency"]["steady"]["p50_s"] * 7.5)


def test_agent_measures_energy_with_a_sensor_it_finds(tmp_path):
    from edgepipe.profiling.agent import agent

    zone = tmp_path / "sys/class/powercap/intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "energy_uj").write_text("1000\n")  # a counter that never moves: zero net energy
    (zone / "max_energy_range_uj").write_text("262143328850\n")

    class Runner:
        calls = 0

        def invoke(self) -> None:
            Runner.calls += 1

    result = agent.measure_energy(Runner(), {"root": str(tmp_path), "idle_s": 0.1,
                                             "min_busy_s": 0.2}, [1e-3], np)
    assert result["label"] == "measured" and result["sensor"]["name"] == "rapl"
    assert result["inferences"] == Runner.calls > 0
    assert "not above idle" in result["warning"]
    empty = agent.measure_energy(Runner(), {"root": str(tmp_path / "none")}, [1e-3], np)
    assert empty["label"] == "unavailable"


def test_bad_input(digits_artifacts, tmp_path):
    with pytest.raises(InputError, match="at least one timed run"):
        LatencySettings(runs=0)
    with pytest.raises(InputError, match="fixed batch of 1"):
        profile(digits_artifacts / "digits-cnn.onnx", "host", QUICK, batch=4)
    with pytest.raises(TargetError) as unknown:
        profile(digits_artifacts / "digits-cnn.onnx", "rpi", QUICK)
    assert "rpi5" in unknown.value.hint
    broken = tmp_path / "broken.onnx"
    broken.write_bytes((digits_artifacts / "digits-cnn.onnx").read_bytes()[:2000])
    with pytest.raises(EdgepipeError) as error:
        profile(broken, "host", QUICK)
    assert error.value.reference == "onnx-invalid"  # the file check names the format


def test_cli_profile_json_and_save(cli, digits_artifacts, tmp_path):
    saved = tmp_path / "profile.json"
    result = cli("profile", digits_artifacts / "digits-cnn.onnx", "--runs", 20, "--duration",
                 0.1, "--threads", 1, "--save", saved, "--json")
    assert result.code == 0, result
    doc = result.json()["result"]
    assert doc["latency"]["steady"]["count"] >= 20
    assert json.loads(saved.read_text())["artifact"] == doc["artifact"]
    human = cli("profile", digits_artifacts / "digits-cnn.onnx", "--runs", 5, "--duration", 0,
                "--target", "rpi5")
    assert human.code == 0, human
    assert "estimated" in human.stdout
    bad = cli("profile", digits_artifacts / "digits-cnn.onnx", "--runs", 0)
    assert bad.code == 1 and "bad-runs" in bad.stderr
