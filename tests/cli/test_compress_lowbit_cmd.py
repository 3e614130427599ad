"""``edgepipe compress --method wNaM`` (Brevitas low-bit) through the real CLI."""

from __future__ import annotations

import json

import pytest

MLP = "builtin:digits-mlp"


def test_w4a8_json_document_manifest_and_eval(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("compress", MLP, "--method", "w4a8", "--data", "builtin:digits",
                 "--calib-size", "128", "-o", out, "--json")
    assert result.code == 0, result
    [artifact] = result.json()["result"]["artifacts"]
    assert artifact["name"] == "digits-mlp.w4a8.onnx" and artifact["precision"] == "w4a8"
    assert artifact["metrics"]["metric"] == "top1" and artifact["metrics"]["drop"] <= 0.02
    assert artifact["tool"]["calibration"]["samples"] == 128
    assert artifact["tool"]["sizes"]["packed_bytes_computed"] < artifact["size_bytes"]
    manifest = json.loads((out / "manifest.json").read_text())
    recorded = {a["name"]: a for a in manifest["artifacts"]}["digits-mlp.w4a8.onnx"]
    evaluated = cli("eval", out / "digits-mlp.w4a8.onnx", "--data", "builtin:digits", "--json")
    assert evaluated.code == 0, evaluated
    assert evaluated.json()["result"]["value"] == recorded["metrics"]["value"]


def test_human_output_says_the_file_keeps_int8_weights(cli, tmp_path):
    result = cli("compress", MLP, "-m", "w2a8", "--data", "builtin:digits", "-o", tmp_path)
    assert result.code == 0, result
    assert "digits-mlp.w2a8.onnx" in result.stdout and "drop" in result.stdout
    assert "stores the low-bit weights as int8" in " ".join(result.stdout.split())


@pytest.mark.parametrize("args, reference, words", [
    (["--weight-bits", "1", "--data", "builtin:digits"], "bad-bit-width", ["1-bit", "2 and 8"]),
    (["--weight-bits", "16", "--data", "builtin:digits"], "bad-bit-width",
     ["int32 QuantizeLinear", "2 and 8"]),
    (["--format", "tflite", "--data", "builtin:digits"], "method-not-available", ["onnx"]),
    ([], "calibration-data-missing", ["--data"]),
    (["--calibration", "entropy"], "option-not-for-method", ["calibration"]),
])
def test_bad_low_bit_input_exits_1_with_a_hint(cli, tmp_path, args, reference, words):
    out = tmp_path / "run"
    result = cli("compress", MLP, "-m", "w4a8", *args, "-o", out)
    assert result.code == 1, result
    assert f"error: {reference}" in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.stderr
    assert all(word in result.stderr for word in words), result
    assert not (out / "digits-mlp.w4a8.onnx").exists()
