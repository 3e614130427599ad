"""``edgepipe eval`` through the real CLI: the digits CNN in each runtime, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

CNN = "builtin:digits-cnn"


@pytest.fixture(scope="module")
def cnn_artifacts(tmp_path_factory):
    from edgepipe.data import load_data_for_model, make_splits
    from edgepipe.evaluate import evaluate_module
    from edgepipe.export import export_model
    from edgepipe.model import load_model

    out = tmp_path_factory.mktemp("cnn")
    loaded = load_model(CNN)
    export_model(loaded, out, formats=("onnx", "openvino", "tflite"))
    eval_set = make_splits(load_data_for_model("builtin:digits", loaded.inputs), seed=0).eval
    return out, evaluate_module(loaded.module, eval_set, inputs=loaded.inputs).value


@pytest.mark.parametrize("name, runtime", [("digits-cnn.onnx", "onnxruntime"),
                                           ("digits-cnn.xml", "openvino"),
                                           ("digits-cnn.tflite", "litert")])
def test_each_runtime_matches_the_torch_top1(cli, cnn_artifacts, name, runtime):
    out, torch_top1 = cnn_artifacts
    result = cli("eval", out / name, "--data", "builtin:digits", "--json")
    assert result.code == 0, result
    document = result.json()["result"]
    assert document["metric"] == "top1" and document["runtime"] == runtime
    assert document["samples"] == 359 and document["data"]["of"] == 1797
    assert abs(document["value"] - torch_top1) <= 0.005, (document["value"], torch_top1)


def test_human_output_names_metric_samples_and_runtime(cli, cnn_artifacts):
    out, _ = cnn_artifacts
    result = cli("eval", out / "digits-cnn.onnx", "--data", "builtin:digits", "--subset", "all",
                 "--reference", CNN, "--threads", "1")
    assert result.code == 0, result
    assert "top-1" in result.stdout and "1797 samples" in result.stdout
    assert "onnxruntime" in result.stdout and "1 threads" in result.stdout
    assert "cosine" in result.stdout  # the per-output table against the reference


def test_unlabelled_data_needs_a_reference(cli, cnn_artifacts, tmp_path):
    out, _ = cnn_artifacts
    data = tmp_path / "x.npz"
    np.savez(data, x=np.random.default_rng(0).random((20, 3, 32, 32), dtype=np.float32))
    result = cli("eval", out / "digits-cnn.onnx", "--data", data)
    assert result.code == 1, result
    assert "error: eval-needs-labels-or-reference" in result.stderr and "hint:" in result.stderr
    result = cli("eval", out / "digits-cnn.xml", "--data", data, "--reference", CNN, "--json")
    assert result.code == 0, result
    document = result.json()["result"]
    assert document["metric"] == "sqnr_db" and document["value"] > 60.0


@pytest.mark.parametrize("artifact, data, reference", [
    ("missing.onnx", "builtin:digits", "artifact-not-found"),
    ("digits-cnn.onnx", "wrong-shape", "data-shape-mismatch"),
])
def test_bad_inputs_exit_1_with_a_hint(cli, cnn_artifacts, tmp_path, artifact, data, reference):
    out, _ = cnn_artifacts
    if data == "wrong-shape":
        data = tmp_path / "x.npz"
        np.savez(data, x=np.zeros((4, 64), np.float32))
    result = cli("eval", out / artifact, "--data", data)
    assert result.code == 1, result
    assert f"error: {reference}" in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.stderr
