"""``edgepipe compress --method lowrank`` through the real CLI, measured by ``edgepipe eval``."""

from __future__ import annotations

import json

import pytest

CNN = "builtin:digits-cnn"


def test_lowrank_ratio_half_keeps_accuracy_and_is_recorded(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("compress", CNN, "--method", "lowrank", "--ratio", "0.5", "--no-latency-check",
                 "--data", "builtin:digits", "-o", out, "--json")
    assert result.code == 0, result
    [artifact] = result.json()["result"]["artifacts"]
    assert artifact["name"] == "digits-cnn.lowrank.onnx" and artifact["precision"] == "fp32"
    tool = artifact["tool"]
    assert tool["params"]["after"] <= 0.5 * tool["params"]["before"]
    assert tool["macs"]["after"] < tool["macs"]["before"]
    factorized = [layer for layer in tool["layers"] if layer["decision"] == "factorized"]
    assert factorized and all(layer["ranks"] for layer in factorized)
    # Measured on the 359-sample eval split: within 1.5 points of the float model
    # (0.56 when this was written), with no fine-tuning.
    metrics = artifact["metrics"]
    assert metrics["metric"] == "top1" and metrics["drop"] <= 0.015
    assert tool["export_parity"]["passed"] is True
    manifest = json.loads((out / "manifest.json").read_text())
    recorded = {a["name"]: a for a in manifest["artifacts"]}["digits-cnn.lowrank.onnx"]
    evaluated = cli("eval", out / "digits-cnn.lowrank.onnx", "--data", "builtin:digits", "--json")
    assert evaluated.code == 0, evaluated
    assert evaluated.json()["result"]["value"] == recorded["metrics"]["value"]


def test_lowrank_writes_openvino_and_shows_the_layer_table(cli, tmp_path):
    result = cli("compress", "builtin:digits-mlp", "-m", "lowrank", "--energy", "0.95",
                 "--epochs", "2", "-f", "openvino", "--data", "builtin:digits", "-o", tmp_path)
    assert result.code == 0, result
    assert (tmp_path / "digits-mlp.lowrank.xml").is_file()
    assert (tmp_path / "digits-mlp.lowrank.bin").is_file()
    text = " ".join(result.stdout.split())
    assert "ranks by energy" in text and "fc1" in text and "ORT ms" in text


@pytest.mark.parametrize("args, reference", [
    (["--ratio", "1.5", "--data", "builtin:digits"], "bad-ratio"),
    (["--energy", "0", "--data", "builtin:digits"], "bad-energy"),
    ([], "calibration-data-missing"),
])
def test_lowrank_bad_input(cli, tmp_path, args, reference):
    result = cli("compress", CNN, "-m", "lowrank", *args, "-o", tmp_path / "out")
    assert result.code == 1, result
    assert f"error: {reference}" in result.stderr and "hint:" in result.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_lowrank_on_a_model_with_nothing_to_factorize(cli, tmp_path):
    result = cli("compress", "tiny_models:many_layers", "-m", "lowrank", "--input-shape",
                 "1x64", "--data", "builtin:digits", "-o", tmp_path / "out")
    assert result.code == 1, result
    assert "error: nothing-to-factorize" in result.stderr
    assert "Linear or Conv2d" in " ".join(result.stderr.split())
