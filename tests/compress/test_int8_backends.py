"""Static int8 for OpenVINO (NNCF) and LiteRT (PT2E) on the bundled digits CNN: accuracy
floors against the float artifact of the same format, int8 weights, nothing left in float."""

from __future__ import annotations

import json

import numpy as np

from edgepipe.compress import Int8StaticConfig, compress
from edgepipe.runtime import open_artifact


def test_openvino_and_tflite_int8_keep_accuracy(digits_cnn, tmp_path):
    loaded, splits = digits_cnn
    result = compress(loaded, Int8StaticConfig(formats=("openvino", "tflite")), tmp_path, splits)
    by_format = {a["format"]: a for a in result.to_dict()["artifacts"]}
    assert set(by_format) == {"openvino", "tflite"}
    for artifact in by_format.values():
        metrics = artifact["metrics"]
        assert artifact["precision"] == "int8"
        assert metrics["metric"] == "top1" and metrics["value"] >= 0.97
        assert metrics["drop"] <= 0.005, metrics  # a fraction: 0.5 points of top-1
        assert artifact["tool"]["left_in_float"] == []
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert {a["name"] for a in manifest["artifacts"]} >= {a["name"] for a in result.to_dict()["artifacts"]}


def test_tflite_int8_is_fully_int8_and_runs_on_float_inputs(digits_cnn, tmp_path):
    loaded, splits = digits_cnn
    (artifact,) = compress(loaded, Int8StaticConfig(formats=("tflite",)), tmp_path,
                           splits).to_dict()["artifacts"]
    session = open_artifact(tmp_path / artifact["path"])
    quantized = session.options["quantized_io"]  # int8 in the file, float to the caller
    assert set(quantized) == {session.inputs[0].name, session.outputs[0].name}
    assert {q["dtype"] for q in quantized.values()} == {"int8"}
    assert [s.dtype for s in session.inputs] == ["float32"]
    x = splits.eval.inputs["input"][:16]
    logits = np.concatenate([session.run([x[i:i + 1]])[0] for i in range(len(x))])
    assert logits.dtype == np.float32  # dequantized with the model's own scale
    assert (logits.argmax(1) == splits.eval.labels[:16]).mean() >= 0.9
    # `edgepipe eval` takes float data for it, as it does for any artifact
    from edgepipe.evaluate import evaluate_artifact

    measured = evaluate_artifact(tmp_path / artifact["path"], splits.eval)
    assert abs(measured.value - artifact["metrics"]["value"]) < 1e-9


def test_openvino_float_layers_are_detected(digits_cnn, tmp_path):
    """The detector that fills left_in_float sees the float IR's layers as float."""
    from edgepipe.compress.int8.openvino import _float_layers
    from edgepipe.export import export_model
    from edgepipe.runtime.openvino_runtime import import_openvino

    loaded, _ = digits_cnn
    export_model(loaded, tmp_path, formats=("openvino",))
    model = import_openvino().Core().read_model(str(tmp_path / "digits-cnn.xml"))
    assert len(_float_layers(model, set())) == 4  # three convolutions and the classifier
