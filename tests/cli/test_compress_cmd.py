"""``edgepipe compress`` through the real CLI: results, manifest, and every bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

MLP = "builtin:digits-mlp"


def _artifacts(out):
    return sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) \
        if out.exists() else []


def test_int8_json_document_and_manifest(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("compress", MLP, "--method", "int8", "--data", "builtin:digits",
                 "--calibration", "percentile", "--calib-size", "128", "-o", out, "--json")
    assert result.code == 0, result
    document = result.json()
    assert document["ok"] is True and document["command"] == "compress"
    assert document["config"]["calibration"] == "percentile"
    [artifact] = document["result"]["artifacts"]
    assert artifact["name"] == "digits-mlp.int8.onnx"
    metrics = artifact["metrics"]
    assert metrics["metric"] == "top1" and metrics["drop"] <= 0.01
    assert artifact["config"]["calibration_used"]["samples"] == 128
    assert artifact["config"]["calibration_used"]["method"] == "percentile"
    assert _artifacts(out) == ["digits-mlp.int8.onnx", "digits-mlp.onnx", "manifest.json"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert {a["name"] for a in manifest["artifacts"]} == {"digits-mlp.onnx",
                                                          "digits-mlp.int8.onnx"}


def test_human_output_has_a_table_and_a_summary(cli, tmp_path):
    result = cli("compress", MLP, "-m", "int8-dynamic", "--data", "builtin:digits",
                 "-o", tmp_path)
    assert result.code == 0, result
    assert "digits-mlp.int8-dynamic.onnx" in result.stdout and "drop" in result.stdout
    assert "measured on 359 samples" in result.stdout


def test_the_manifest_metric_is_what_eval_measures(cli, tmp_path):
    assert cli("compress", MLP, "-m", "fp16", "--data", "builtin:digits", "-o", tmp_path).code == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    recorded = {a["name"]: a for a in manifest["artifacts"]}["digits-mlp.fp16.onnx"]
    result = cli("eval", tmp_path / "digits-mlp.fp16.onnx", "--data", "builtin:digits", "--json")
    assert result.code == 0, result
    assert result.json()["result"]["value"] == recorded["metrics"]["value"]


def _expect_failure(result, reference, out, *words):
    assert result.code == 1, result
    assert f"error: {reference}" in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.stderr
    assert all(word in result.stderr for word in words), result
    assert [p for p in _artifacts(out) if p != "manifest.json"] == []


def test_static_int8_without_data(cli, tmp_path):
    out = tmp_path / "run"
    _expect_failure(cli("compress", MLP, "-m", "int8", "-o", out), "calibration-data-missing",
                    out, "--allow-random-calibration")


def test_random_calibration_warns_loudly(cli, tmp_path):
    result = cli("compress", MLP, "-m", "int8", "--allow-random-calibration", "--calib-size",
                 "16", "-o", tmp_path)
    assert result.code == 0, result
    assert "RANDOM DATA" in result.stderr


def test_calibration_data_of_the_wrong_shape(cli, tmp_path):
    data = tmp_path / "x.npz"
    np.savez(data, x=np.zeros((10, 3, 32, 32), np.float32))
    out = tmp_path / "run"
    _expect_failure(cli("compress", MLP, "-m", "int8", "--data", data, "-o", out),
                    "data-shape-mismatch", out, "3x32x32")


@pytest.mark.parametrize("args, reference, words", [
    (["-m", "fp16", "--calibration", "entropy"], "option-not-for-method", ["calibration"]),
    (["-m", "int8-dynamic", "--format", "tflite"], "method-not-available", ["tflite"]),
    (["-m", "int8", "--calib-size", "0", "--data", "builtin:digits"], "bad-calib-size", []),
    (["-m", "int8", "--data", "builtin:digits", "--exclude", "no_such_node"], "unknown-layer",
     ["no_such_node"]),
])
def test_bad_options(cli, tmp_path, args, reference, words):
    out = tmp_path / "run"
    _expect_failure(cli("compress", MLP, *args, "-o", out), reference, out, *words)


def test_unknown_method_is_a_usage_error_listing_the_methods(cli, tmp_path):
    result = cli("compress", MLP, "-m", "int3", "-o", tmp_path)
    assert result.code == 2
    assert all(name in result.stderr for name in ("int8", "int8-dynamic", "fp16"))


def test_sensitivity_prints_the_ranked_table_and_json_carries_it(cli, tmp_path):
    result = cli("compress", MLP, "-m", "int8", "--data", "builtin:digits", "--sensitivity",
                 "-o", tmp_path, "--json")
    assert result.code == 0, result
    table = result.json()["result"]["sensitivity"]["onnx"]
    assert [r["op"] for r in table["layers"]] == ["Gemm"] * 3 and table["metric"] == "top1"
    assert json.loads((tmp_path / "sensitivity.json").read_text())["layers"] == table["layers"]
    human = cli("compress", MLP, "-m", "int8", "--data", "builtin:digits", "--sensitivity",
                "-o", tmp_path / "human")
    assert human.code == 0, human
    assert "Per-layer sensitivity" in human.stdout
    assert all(r["layer"] in human.stdout for r in table["layers"])


def test_a_negative_max_drop_is_a_usage_error(cli, tmp_path):
    result = cli("compress", MLP, "-m", "int8", "--data", "builtin:digits", "--max-drop", "-1",
                 "-o", tmp_path / "out")
    assert result.code == 2, result
    assert not (tmp_path / "out").exists()


def test_an_unmet_budget_exits_1_and_keeps_the_best_artifact(cli, tmp_path):
    """Random calibration and no labels: cosine points, which int8 never brings to 0."""
    result = cli("compress", MLP, "-m", "int8", "--allow-random-calibration", "--max-drop", "0",
                 "-o", tmp_path, "--json")
    assert result.code == 1, result
    document = result.json()
    assert document["ok"] is False
    assert document["error"]["reference"] == "budget-not-met"
    assert "digits-mlp.int8.over-budget.onnx" in document["error"]["message"]
    assert _artifacts(tmp_path) == ["digits-mlp.int8.over-budget.onnx", "digits-mlp.onnx",
                                    "manifest.json", "sensitivity.json"]
