"""``edgepipe compress --method binary`` through the real CLI."""

from __future__ import annotations

import json

import pytest

MLP = "builtin:digits-mlp"


def test_binary_json_manifest_packed_file_and_eval(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("compress", MLP, "--method", "binary", "--data", "builtin:digits",
                 "--epochs", "4", "-o", out, "--json")
    assert result.code == 0, result
    [artifact] = result.json()["result"]["artifacts"]
    assert artifact["name"] == "digits-mlp.binary.onnx" and artifact["precision"] == "binary"
    assert artifact["metrics"]["value"] >= 0.8, artifact["metrics"]
    assert (out / "digits-mlp.binary.packed.bin").is_file()
    assert artifact["config"]["binary_activations"] and artifact["config"]["epochs"] == 4
    manifest = json.loads((out / "manifest.json").read_text())
    recorded = {a["name"]: a for a in manifest["artifacts"]}["digits-mlp.binary.onnx"]
    assert recorded["files"] == ["digits-mlp.binary.onnx", "digits-mlp.binary.packed.bin"]
    evaluated = cli("eval", out / "digits-mlp.binary.onnx", "--data", "builtin:digits", "--json")
    assert evaluated.code == 0, evaluated
    assert evaluated.json()["result"]["value"] == recorded["metrics"]["value"]


def test_human_output_labels_sizes_ops_and_latency(cli, tmp_path):
    result = cli("compress", MLP, "-m", "binary", "--data", "builtin:digits", "--epochs", "1",
                 "--no-binary-activations", "-o", tmp_path)
    assert result.code == 0, result
    text = " ".join(result.stdout.split())
    assert "packed weights digits-mlp.binary.packed.bin" in text and "(measured)" in text
    assert "float MACs (computed)" in text and "no binary (XNOR-popcount) kernels" in text
    assert "weights only" in json.dumps(
        json.loads((tmp_path / "manifest.json").read_text())["artifacts"])


@pytest.mark.parametrize("model, args, reference, words", [
    ("tiny_models:mlp", ["--input-shape", "1x64", "--data", "builtin:digits"],
     "nothing-to-binarize", ["no layer to binarize", "--first-last-bits none"]),
    (MLP, ["--first-last-bits", "16", "--data", "builtin:digits"], "bad-bit-width", ["2 and 8"]),
    (MLP, [], "training-data-missing", ["--data"]),
    (MLP, ["--data", "builtin:digits", "--epochs", "0"], "bad-training-option", ["epochs"]),
])
def test_bad_binary_input_exits_1_with_a_hint(cli, tmp_path, model, args, reference, words):
    out = tmp_path / "run"
    result = cli("compress", model, "-m", "binary", *args, "-o", out)
    assert result.code == 1, result
    assert f"error: {reference}" in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.stderr
    assert all(word in " ".join(result.stderr.split()) for word in words), result
    assert not list(out.glob("*.binary.*")) if out.exists() else True


@pytest.mark.parametrize("model", ["two_output_cnn", "tiny_vit", "aux_branch_cnn",
                                   "strided_projection_cnn"])
def test_binary_on_models_that_are_not_plain_cnns(cli, tmp_path, model):
    """Each of these was an internal error (TypeError, KeyError, StopIteration)."""
    result = cli("compress", f"tiny_models:{model}", "--input-shape", "1x3x8x8", "-m", "binary",
                 "--data", "builtin:digits", "--epochs", "1", "-o", tmp_path, "--json")
    assert result.code == 0, result
    [artifact] = result.json()["result"]["artifacts"]
    assert artifact["tool"]["parity_check"]["passed"]
    assert (tmp_path / f"{model}.binary.packed.bin").is_file()
