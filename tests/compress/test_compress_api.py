"""compress() on the bundled digits models: accuracy floors, manifest records, bad inputs.

Floors, not exact values: each method's top-1 on the 359-sample eval split must stay
within the stated points of the float artifact measured in the same run.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from edgepipe.compress import (
    CompressResult,
    Fp16Config,
    Int8DynamicConfig,
    Int8StaticConfig,
    compress,
)
from edgepipe.data import Dataset, make_splits
from edgepipe.errors import InputError, UnsupportedError

INT8_MAX_DROP = 0.010  # 1.0 point of top-1 (the goal is 0.5; see the report)
FP16_MAX_DROP = 0.005


def _files(out):
    return sorted(p.name for p in out.iterdir() if not p.name.startswith("."))


@pytest.fixture(scope="module")
def cnn_int8(digits_cnn, tmp_path_factory):
    loaded, splits = digits_cnn
    out = tmp_path_factory.mktemp("cnn-int8")
    return compress(loaded, Int8StaticConfig(), out, splits), out


def test_static_int8_cnn_stays_within_a_point_and_is_recorded(cnn_int8, digits_cnn):
    result, out = cnn_int8
    [artifact] = result.artifacts
    [float_artifact] = result.float_artifacts
    metrics = artifact.metrics
    assert metrics.metric == "top1" and metrics.samples == len(digits_cnn[1].eval) == 359
    assert metrics.float_value > 0.97  # the float artifact, measured in this run
    assert metrics.drop == pytest.approx(metrics.float_value - metrics.value)
    assert metrics.drop <= INT8_MAX_DROP, metrics
    assert artifact.precision == "int8" and artifact.tool.left_in_float == []
    assert artifact.tool.source_artifact == float_artifact.name == "digits-cnn.onnx"
    assert result.float_artifact("digits-cnn.onnx") is float_artifact
    assert artifact.size_bytes < 0.5 * float_artifact.size_bytes
    calibration = artifact.calibration
    assert calibration.samples == 256 and calibration.method == "minmax"
    assert result.calibration() is calibration and not calibration.random
    assert artifact.config["method"] == "int8" and artifact.config["per_channel"] is True
    assert result.data.part == "eval split" and result.data.samples == 359
    assert result.baseline.metric == "top1" and result.baseline.samples == 359
    assert _files(out) == ["digits-cnn.int8.onnx", "digits-cnn.onnx", "manifest.json"]
    manifest = json.loads((out / "manifest.json").read_text())
    entries = {a["name"]: a for a in manifest["artifacts"]}
    assert entries["digits-cnn.int8.onnx"]["metrics"]["drop"] == metrics.drop
    assert entries["digits-cnn.onnx"]["metrics"]["eval"]["value"] == metrics.float_value
    assert manifest["steps"][-1]["step"] == "compress"
    # the manifest's record is the typed record's document, and it reads back
    assert entries["digits-cnn.int8.onnx"] == artifact.to_dict()
    assert artifact.record().to_dict() == artifact.to_dict()


def test_the_typed_result_round_trips_through_its_document(cnn_int8):
    result, _ = cnn_int8
    document = result.to_dict()
    again = CompressResult.from_dict(json.loads(json.dumps(document)))
    assert again.to_dict() == document
    [artifact] = again.artifacts
    assert artifact.metrics.eval.outputs[0].sqnr_db > 20.0
    assert artifact.tool.sizes is None and artifact.tool.binary is None
    assert artifact.tool.lowrank is None
    assert list(document) == ["out", "method", "artifacts", "float_artifacts", "baseline",
                              "data", "sensitivity", "budget", "failed"]
    assert list(document["artifacts"][0]["metrics"]) == [
        "metric", "value", "float_value", "float_artifact", "source_value", "drop",
        "samples", "data", "eval", "host", "compress_seconds"]
    assert list(document["artifacts"][0]["tool"])[-4:] == ["from", "left_in_float", "notes",
                                                          "files"]


def test_the_verb_loads_and_splits_the_data_itself(digits_cnn, tmp_path):
    """A DATA spec or a Dataset is split as ``edgepipe compress --data`` splits it: the same
    samples measured, the same artifact, as with the ready Splits."""
    loaded, splits = digits_cnn
    config = Int8DynamicConfig()
    ready = compress(loaded, config, tmp_path / "splits", splits)
    spec = compress(loaded, config, tmp_path / "spec", "builtin:digits")
    whole = Dataset({"input": np.concatenate([splits.train.x, splits.eval.x])},
                    np.concatenate([splits.train.labels, splits.eval.labels]))
    dataset = compress(loaded, config, tmp_path / "dataset", whole)
    assert spec.data.split == ready.data.split  # same seed, same split of builtin:digits
    assert spec.artifacts[0].metrics.value == ready.artifacts[0].metrics.value
    assert spec.artifacts[0].sha256 == ready.artifacts[0].sha256
    assert dataset.data.samples == len(splits.eval) and dataset.data.labelled
    loaded_later = compress(lambda: loaded, config, tmp_path / "later", "builtin:digits")
    assert loaded_later.artifacts[0].sha256 == ready.artifacts[0].sha256


def test_static_int8_beats_or_matches_onnxruntime_defaults(cnn_int8, digits_cnn, tmp_path):
    """Same float model, same 256 calibration samples: quantize_static with its defaults."""
    from onnxruntime.quantization import quantize_static

    from edgepipe.evaluate import evaluate_artifact

    result, out = cnn_int8
    loaded, splits = digits_cnn

    class Reader:
        def __init__(self):
            self.samples = iter(splits.calib.x[:256])

        def get_next(self):
            x = next(self.samples, None)
            return None if x is None else {"input": x[None]}

    default = tmp_path / "default.onnx"
    quantize_static(str(out / "digits-cnn.onnx"), str(default), Reader())
    theirs = evaluate_artifact(default, splits.eval, reference=loaded)
    ours = evaluate_artifact(out / "digits-cnn.int8.onnx", splits.eval, reference=loaded)
    assert ours.value >= theirs.value, (ours.value, theirs.value)
    assert ours.outputs[0].sqnr_db > theirs.outputs[0].sqnr_db


def test_static_and_dynamic_int8_mlp(digits_mlp, tmp_path):
    loaded, splits = digits_mlp
    static = compress(loaded, Int8StaticConfig(), tmp_path / "static", splits).to_dict()["artifacts"][0]
    dynamic = compress(loaded, Int8DynamicConfig(), tmp_path / "dynamic", splits).to_dict()["artifacts"][0]
    assert static["metrics"]["drop"] <= INT8_MAX_DROP, static["metrics"]
    assert dynamic["metrics"]["drop"] <= INT8_MAX_DROP, dynamic["metrics"]
    assert dynamic["config"]["calibration_used"] is None
    assert dynamic["tool"]["quantizer"].endswith("quantize_dynamic")


def test_fp16_for_every_format(digits_cnn, tmp_path):
    loaded, splits = digits_cnn
    result = compress(loaded, Fp16Config(formats=("onnx", "openvino", "tflite")), tmp_path,
                      splits)
    assert [a["name"] for a in result.to_dict()["artifacts"]] == [
        "digits-cnn.fp16.onnx", "digits-cnn.fp16.xml", "digits-cnn.fp16.tflite"]
    for artifact in result.to_dict()["artifacts"]:
        assert artifact["precision"] == "fp16" and artifact["parity"]["gated"] is True
        assert artifact["parity"]["passed"] is True
        assert artifact["metrics"]["drop"] <= FP16_MAX_DROP, artifact["metrics"]
        assert artifact["metrics"]["eval"]["outputs"][0]["sqnr_db"] > 45.0
    inputs = {a["name"]: a["inputs"][0]["dtype"] for a in result.to_dict()["artifacts"]}
    assert set(inputs.values()) == {"float32"}  # IO stays float32


def test_unlabelled_data_gives_sqnr_against_the_float_model(digits_mlp, tmp_path):
    loaded, splits = digits_mlp
    unlabelled = dataclasses.replace(splits, calib=dataclasses.replace(splits.calib, labels=None),
                                     eval=dataclasses.replace(splits.eval, labels=None))
    int8 = compress(loaded, Int8StaticConfig(), tmp_path / "int8", unlabelled).to_dict()["artifacts"][0]
    fp16 = compress(loaded, Fp16Config(), tmp_path / "fp16", unlabelled).to_dict()["artifacts"][0]
    assert int8["metrics"]["metric"] == "sqnr_db" and int8["metrics"]["drop"] is None
    assert int8["metrics"]["value"] > 30.0  # measured 41.8 dB
    assert fp16["metrics"]["value"] > 60.0  # fp16 weights: far less noise than int8
    assert 0.999 < int8["metrics"]["eval"]["outputs"][0]["cosine_mean"] <= 1.0 + 1e-9


def test_entropy_calibration_differs_from_minmax(digits_mlp, tmp_path):
    """onnxruntime's own entropy calibration (128 bins) returns min-max ranges; ours must not."""
    import onnx
    from onnx import numpy_helper

    loaded, splits = digits_mlp
    scales = {}
    for method in ("minmax", "entropy"):
        out = tmp_path / method
        artifact = compress(loaded, Int8StaticConfig(calibration=method), out,
                            splits).to_dict()["artifacts"][0]
        assert artifact["config"]["calibration_used"]["method"] == method
        graph = onnx.load(str(out / artifact["name"])).graph
        scales[method] = {t.name: float(numpy_helper.to_array(t)) for t in graph.initializer
                          if t.name.endswith("_scale") and numpy_helper.to_array(t).size == 1}
    changed = [n for n in scales["minmax"] if scales["entropy"][n] != scales["minmax"][n]]
    assert changed, scales
    assert all(scales["entropy"][n] <= scales["minmax"][n] + 1e-9 for n in changed)


def test_a_layer_the_quantizer_cannot_handle_stays_float_and_is_listed(tmp_path):
    from edgepipe.model import load_model

    loaded = load_model("compress_models:gru_classifier", input_shape=(1, 5, 8))
    rng = np.random.default_rng(0)
    data = make_splits(Dataset({"input": rng.random((80, 5, 8), dtype=np.float32)}), calib_size=64)
    result = compress(loaded, Int8StaticConfig(), tmp_path, data)
    [artifact] = result.to_dict()["artifacts"]
    left = artifact["tool"]["left_in_float"]
    assert [item["op"] for item in left] == ["GRU"], left
    assert "does not quantize" in left[0]["reason"]
    assert artifact["metrics"]["value"] > 20.0  # SQNR (dB) against the torch model
    assert (tmp_path / artifact["name"]).is_file()


def test_static_int8_without_data_is_refused_and_writes_nothing(digits_mlp, tmp_path):
    loaded, _ = digits_mlp
    out = tmp_path / "run"
    with pytest.raises(InputError) as info:
        compress(loaded, Int8StaticConfig(), out)
    assert info.value.reference == "calibration-data-missing"
    assert "--allow-random-calibration" in info.value.hint
    assert not out.exists()


def test_random_calibration_only_when_allowed_and_recorded(digits_mlp, tmp_path, caplog):
    loaded, _ = digits_mlp
    config = Int8StaticConfig(allow_random_calibration=True, calib_size=32)
    with caplog.at_level("WARNING", logger="edgepipe"):
        artifact = compress(loaded, config, tmp_path).to_dict()["artifacts"][0]
    assert "RANDOM DATA" in caplog.text
    assert artifact["config"]["calibration_used"]["random"] is True
    assert artifact["metrics"]["data"]["source"] == "random N(0,1)"


def test_wrong_shaped_calibration_data_fails_before_any_work(digits_cnn, digits_mlp, tmp_path):
    loaded, _ = digits_cnn
    _, mlp_splits = digits_mlp  # 64 features, not 3x32x32 images
    out = tmp_path / "run"
    with pytest.raises(InputError) as info:
        compress(loaded, Int8StaticConfig(), out, mlp_splits)
    assert info.value.reference == "data-shape-mismatch"
    assert not out.exists()


def test_a_method_a_format_lacks_is_refused_before_any_work(digits_mlp, tmp_path):
    loaded, splits = digits_mlp
    with pytest.raises(UnsupportedError) as info:
        compress(loaded, Int8DynamicConfig(formats=("openvino",)), tmp_path / "run", splits)
    assert info.value.reference == "method-not-available"
    assert "openvino" in info.value.message and "onnx" in info.value.hint
    assert not (tmp_path / "run").exists()


def test_a_backend_failure_leaves_no_artifact(digits_mlp, tmp_path, monkeypatch):
    from edgepipe.compress.int8 import ort as ort_quant

    def broken(job):
        job.path.write_bytes(b"half")
        raise UnsupportedError("boom", hint="none")

    monkeypatch.setattr(ort_quant, "compress", broken)
    loaded, splits = digits_mlp
    with pytest.raises(UnsupportedError):
        compress(loaded, Fp16Config(), tmp_path, splits)
    assert _files(tmp_path) == []
