"""Models that are not plain single-output CNNs through the methods that rewrite a torch
model (issue 17): a ResNet block with a strided 1x1 projection shortcut, two outputs (class
logits and a box), a TransformerEncoder ViT, an auxiliary branch used in training only, and
a segmentation-style dict output whose per-pixel classes the image labels do not fit.

Each float model is trained for a few seconds on builtin:digits first (8x8, as 3x8x8), so
the floors mean something. Floors, not exact values.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from compress_models import trained
from edgepipe.compress import compress, make_config
from edgepipe.data import load_data_for_model, make_splits
from edgepipe.errors import ToleranceError
from edgepipe.model import load_model


@pytest.fixture(scope="module")
def projection(tmp_path_factory):
    loaded, splits = trained("strided_projection_cnn")
    out = tmp_path_factory.mktemp("projection")
    return compress(loaded, make_config("binary", epochs=6), out, splits), out


def test_binary_projection_shortcut_finds_weights_by_name(projection):
    """The BatchNorms after conv1 and the strided 1x1 projection sit beside them (not in a
    Sequential): they were left for the exporter to fold into the binary weights, which the
    value lookup then could not find (StopIteration)."""
    result, out = projection
    [artifact] = result.to_dict()["artifacts"]
    layers = {layer["layer"]: layer for layer in artifact["tool"]["layers"]}
    assert {n for n, layer in layers.items() if layer["kind"] == "binary"} == {
        "conv1", "conv2", "project"}
    assert all(layers[n]["batchnorm"] for n in ("conv1", "conv2", "project"))
    assert layers["project"]["no_shortcut"]  # 7x7 -> 4x4: no integer pooling factor
    graph = onnx.load(str(out / artifact["name"])).graph
    named = {node.name for node in graph.node if node.op_type == "DequantizeLinear"}
    assert {"conv1.binary_weight", "conv2.binary_weight", "project.binary_weight"} <= named
    assert artifact["tool"]["packed"]["round_trip"] == "exact"
    assert artifact["parity"]["passed"] and artifact["tool"]["parity_check"]["passed"]
    metrics = artifact["metrics"]
    assert metrics["float_value"] >= 0.85 and metrics["value"] >= 0.5, metrics
    assert not (out / ".checkpoints").exists()


def test_binary_two_outputs_trains_and_measures_every_output(tmp_path):
    loaded, splits = trained("two_output_cnn")
    result = compress(loaded, make_config("binary", epochs=6), tmp_path, splits)
    [artifact] = result.to_dict()["artifacts"]
    metrics = artifact["metrics"]
    # top-1 on the class logits (the labels fit them, not the 4-number box)
    assert metrics["metric"] == "top1" and metrics["eval"]["classifier_output"]
    assert metrics["float_value"] >= 0.85 and metrics["value"] >= 0.3, metrics
    outputs = metrics["eval"]["outputs"]
    assert len(outputs) == 2
    box = outputs[1]
    assert box["cosine_mean"] >= 0.9 and box["max_abs_diff"] < 5.0, box
    training = artifact["tool"]["training"]
    assert "on 2 outputs" in training["loss"] and training["labelled"]
    layers = {layer["layer"]: layer["kind"] for layer in artifact["tool"]["layers"]}
    # both heads produce a model output: both stay 8-bit
    assert layers == {"conv1": "int8", "conv2": "binary", "conv3": "binary",
                      "classes": "int8", "box": "int8"}
    assert artifact["tool"]["parity_check"]["passed"]


def test_binary_and_lowrank_leave_attention_alone(tmp_path):
    loaded, splits = trained("tiny_vit")
    result = compress(loaded, make_config("binary", epochs=3), tmp_path / "binary", splits)
    [artifact] = result.to_dict()["artifacts"]
    left = {item["layer"]: item["reason"] for item in artifact["tool"]["left_in_float"]}
    assert left["enc.layers.0.self_attn.out_proj"] == (
        "MultiheadAttention reads its weight directly")
    assert "fused inference path" in left["enc.layers.0.linear1"]
    kinds = {layer["layer"]: layer["kind"] for layer in artifact["tool"]["layers"]}
    assert kinds == {"patch": "int8", "mix": "binary", "fc": "int8"}
    assert artifact["tool"]["parity_check"]["passed"]
    assert artifact["metrics"]["float_value"] >= 0.6

    config = make_config("lowrank", latency_check=False, ratio=0.99)
    result = compress(loaded, config, tmp_path / "lowrank", splits)
    [artifact] = result.to_dict()["artifacts"]
    left = {item["layer"]: item["reason"] for item in artifact["tool"]["left_in_float"]}
    assert left["enc.layers.0.self_attn.out_proj"] == (
        "MultiheadAttention reads its weight directly")
    assert set(left) >= {"enc.layers.0.linear1", "enc.layers.0.linear2"}
    factorized = [layer["layer"] for layer in artifact["tool"]["layers"]
                  if layer.get("decision") == "factorized"]
    assert factorized and not any(name.startswith("enc.") for name in factorized)
    metrics = artifact["metrics"]
    assert metrics["drop"] <= 0.1, metrics


def test_binary_skips_an_auxiliary_branch(tmp_path):
    loaded, splits = trained("aux_branch_cnn")
    result = compress(loaded, make_config("binary", epochs=6), tmp_path, splits)
    [artifact] = result.to_dict()["artifacts"]
    left = {item["layer"]: item["reason"] for item in artifact["tool"]["left_in_float"]}
    assert "does not run at inference" in left["aux1.2"]
    kinds = {layer["layer"]: layer["kind"] for layer in artifact["tool"]["layers"]}
    assert kinds == {"conv1.0": "int8", "conv2.0": "binary", "conv3.0": "binary", "fc": "int8"}
    assert artifact["metrics"]["value"] >= 0.5, artifact["metrics"]


@pytest.mark.parametrize("method", ["int8", "binary"])
def test_labels_that_fit_no_output_measure_against_the_float_model(tmp_path, method):
    """A dict output of per-pixel scores: the digits labels do not fit it, so every output
    is compared with the float model (was: eval-needs-labels-or-reference)."""
    loaded = load_model("tiny_models:tiny_segmenter", input_shape=(1, 3, 8, 8))
    splits = make_splits(load_data_for_model("builtin:digits", loaded.inputs), seed=0,
                   calib_size=128)
    options = {"epochs": 2} if method == "binary" else {}
    result = compress(loaded, make_config(method, **options), tmp_path, splits)
    [artifact] = result.to_dict()["artifacts"]
    metrics = artifact["metrics"]
    assert metrics["metric"] == "sqnr_db" and metrics["drop"] is None
    assert metrics["eval"]["reference"] == "tiny_models:tiny_segmenter"
    [output] = metrics["eval"]["outputs"]
    floor = {"int8": (25.0, 0.99), "binary": (0.0, 0.5)}[method]
    assert output["sqnr_db"] >= floor[0] and output["cosine_mean"] >= floor[1], output
    assert np.isfinite(output["max_abs_diff"])


def test_a_failure_after_training_keeps_the_trained_model(tmp_path, monkeypatch):
    from edgepipe.compress.binary import backend as binary

    loaded, splits = trained("strided_projection_cnn", epochs=2)
    config = make_config("binary", epochs=2)

    def broken(*_args, **_kwargs):
        raise ToleranceError("the packed file broke", hint="(test)", reference="packed-mismatch")

    with monkeypatch.context() as patch:
        patch.setattr(binary, "check_packed", broken, raising=False)
        patch.setattr("edgepipe.compress.binary.pack.check_packed", broken)
        with pytest.raises(ToleranceError) as caught:
            compress(loaded, config, tmp_path, splits)
    [kept] = list((tmp_path / ".checkpoints").glob("*.pt"))
    assert str(kept) in caught.value.hint and "reuses it" in caught.value.hint
    result = compress(loaded, config, tmp_path, splits)
    training = result.to_dict()["artifacts"][0]["tool"]["training"]
    assert training["checkpoint"] == {"path": str(kept), "reused": True}
    assert not kept.exists()  # the artifact is made: the checkpoint is not needed


def test_exported_nodes_are_found_by_their_scope_names():
    from onnx import helper

    from edgepipe.compress.onnx_layers import exported_node

    names = ["/layer1/layer1.0/conv1/Conv", "/branch/branch.13/layer/Conv",
             "/branch/branch.3/layer/Conv", "/enc/layers.0/linear1/layer/MatMul", "/fc/Gemm"]
    graph = helper.make_graph([helper.make_node(n.rsplit("/", 1)[1], ["x", "w"], [n + "_out"],
                                                name=n) for n in names], "g", [], [])
    found = {module: getattr(exported_node(graph, module), "name", None) for module in [
        "layer1.0.conv1", "branch.3.layer", "branch.13.layer", "enc.layers.0.linear1.layer",
        "fc", "layer", "conv1", "branch.1.layer"]}
    assert found == {"layer1.0.conv1": names[0], "branch.3.layer": names[2],
                     "branch.13.layer": names[1], "enc.layers.0.linear1.layer": names[3],
                     "fc": names[4], "layer": None, "conv1": None, "branch.1.layer": None}
