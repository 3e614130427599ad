"""export_model on tiny models: every format exports, runs in its runtime and matches torch."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from edgepipe.errors import UnsupportedError
from edgepipe.export import export_model
from edgepipe.model import load_model, run_torch
from edgepipe.rundir import RunDir
from edgepipe.runtime import open_artifact

SQNR_FLOOR_FP32 = 40.0  # dB; fp32 exports measured 130-150 dB on these models
MAX_DIFF_FP32 = 1e-4


def _assert_parity_floor(artifact: dict, max_diff: float = MAX_DIFF_FP32,
                         sqnr: float = SQNR_FLOOR_FP32) -> None:
    parity = artifact["parity"]
    assert parity["passed"] is True
    for output in parity["outputs"]:
        assert output["max_abs_diff"] < max_diff, output
        assert output["identical"] or output["sqnr_db"] > sqnr, output


@pytest.fixture(scope="module")
def cnn_export(tmp_path_factory):
    """ResidualCNN to all three formats, TFLite channel-last."""
    out = tmp_path_factory.mktemp("cnn")
    loaded = load_model("tiny_models:residual_cnn", input_shape=(2, 3, 16, 16))
    result = export_model(loaded, out, formats=("onnx", "tflite", "openvino"), nhwc=True,
                          batch=2)
    return loaded, out, result


def test_every_format_passes_parity(cnn_export):
    _, out, result = cnn_export
    assert result.ok and [a["format"] for a in result.artifacts] == ["onnx", "tflite", "openvino"]
    for artifact in result.artifacts:
        _assert_parity_floor(artifact)
        assert artifact["parity"]["outputs"][0]["top1_agreement"] == 1.0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "manifest.json", "residual_cnn.bin", "residual_cnn.onnx", "residual_cnn.tflite",
        "residual_cnn.xml"]


def test_manifest_entries_are_complete(cnn_export):
    loaded, out, _ = cnn_export
    manifest = json.loads((out / "manifest.json").read_text())
    assert [a["format"] for a in manifest["artifacts"]] == ["onnx", "tflite", "openvino"]
    for entry in manifest["artifacts"]:
        files = [out / name for name in entry["files"]]
        assert all(f.is_file() for f in files)
        assert entry["size_bytes"] == sum(f.stat().st_size for f in files)
        assert len(entry["sha256"]) == 64 and entry["precision"] == "fp32"
        assert entry["source"]["sha256"] == loaded.source_sha256()
        assert entry["tool"]["exporter"] and entry["tool"]["version"]
        assert entry["inputs"] and entry["outputs"]
        assert set(entry["layout"]) == {t["name"] for t in entry["inputs"] + entry["outputs"]}
        parity = entry["parity"]
        assert parity["runtime"]["runtime"] in ("onnxruntime", "litert", "openvino")
        assert parity["runtime"]["version"]
        assert parity["inputs"]["kind"] == "random" and parity["inputs"]["batch"] == 2
        for key in ("max_abs_diff", "mean_abs_diff", "sqnr_db", "top1_agreement", "limit"):
            assert key in parity["outputs"][0]
        assert entry["metrics"]["export_seconds"] > 0
    onnx_entry, tflite_entry, ov_entry = manifest["artifacts"]
    assert onnx_entry["tool"]["exporter"] == "torch.onnx (dynamo)"
    assert "fallback" not in onnx_entry["tool"]
    assert onnx_entry["files"] == ["residual_cnn.onnx"]  # small: self-contained
    assert ov_entry["files"] == ["residual_cnn.xml", "residual_cnn.bin"]
    assert tflite_entry["layout"] == {"args_0": "NHWC", "output_0": "NC"}
    assert onnx_entry["layout"] == {"input": "NCHW", "output": "NC"}
    assert manifest["steps"][-1]["step"] == "export"


def test_nhwc_tflite_has_no_edge_transpose_and_same_outputs(cnn_export):
    loaded, out, _ = cnn_export
    session = open_artifact(out / "residual_cnn.tflite")
    assert session.inputs[0].shape == (2, 16, 16, 3)
    assert "TRANSPOSE" not in session.ops()[:1]  # the first op reads the input
    from edgepipe.export.tflite import edge_transposes

    assert edge_transposes(out / "residual_cnn.tflite") == []
    x = loaded.sample_inputs(2, seed=7)[0]
    got = session.run([np.transpose(x, (0, 2, 3, 1))])[0]
    np.testing.assert_allclose(got, run_torch(loaded.module, [x])[0], atol=1e-5)


def test_nchw_tflite_keeps_the_converter_transpose(tmp_path):
    """Without --nhwc litert-torch adds a TRANSPOSE at the input: what --nhwc removes."""
    loaded = load_model("tiny_models:residual_cnn", input_shape=(1, 3, 16, 16))
    result = export_model(loaded, tmp_path, formats=("tflite",))
    assert result.artifacts[0]["tool"]["edge_transposes"] == ["input 0"]
    assert result.artifacts[0]["layout"]["args_0"] == "NCHW"


def test_four_d_outputs_are_channel_last_with_nhwc(tmp_path):
    loaded = load_model("export_models:features_and_logits", input_shape=(1, 3, 8, 8))
    result = export_model(loaded, tmp_path, formats=("tflite", "onnx"), nhwc=True)
    tflite, onnx = result.artifacts
    assert tflite["layout"] == {"args_0": "NHWC", "output_0": "NHWC", "output_1": "NC"}
    assert tflite["outputs"][0]["shape"] == [1, 8, 8, 4]
    assert tflite["tool"]["edge_transposes"] == []
    assert onnx["outputs"][0]["shape"] == [1, 4, 8, 8]  # --nhwc is TFLite's only
    for artifact in result.artifacts:
        _assert_parity_floor(artifact)


def test_integer_inputs_and_explicit_parity_arrays(tmp_path):
    loaded = load_model("tiny_models:two_input_model",
                        inputs=_specs("input_ids:2x6:int64", "mask:2x6:float32"))
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 50, (2, 6)), np.ones((2, 6), np.float32)]
    result = export_model(loaded, tmp_path, formats=("onnx", "tflite", "openvino"), inputs=arrays)
    for artifact in result.artifacts:
        _assert_parity_floor(artifact)
        assert artifact["parity"]["inputs"]["kind"] == "given"
    onnx, tflite, ov = result.artifacts
    assert [t["dtype"] for t in onnx["inputs"]] == ["int64", "float32"]
    assert tflite["inputs"][0]["dtype"] == "int32"  # litert-torch narrows int64 (recorded)


def test_dynamic_batch_runs_other_batch_sizes(tmp_path):
    loaded = load_model("tiny_models:residual_cnn", input_shape=(1, 3, 16, 16))
    result = export_model(loaded, tmp_path, formats=("onnx", "openvino"), dynamic_batch=True)
    x = loaded.sample_inputs(3, seed=1)
    want = run_torch(loaded.module, x)[0]
    for artifact in result.artifacts:
        assert not isinstance(artifact["inputs"][0]["shape"][0], int)
        got = open_artifact(tmp_path / artifact["name"]).run(x)[0]
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_dynamo_failure_falls_back_to_torchscript_and_says_so(tmp_path, caplog):
    loaded = load_model("export_models:data_dependent_branch", input_shape=(1, 8))
    with caplog.at_level(logging.WARNING, logger="edgepipe"):
        result = export_model(loaded, tmp_path, formats=("onnx",))
    tool = result.artifacts[0]["tool"]
    assert tool["exporter"] == "torch.onnx (torchscript)"
    assert tool["fallback"]["from"] == "dynamo" and "data-dependent" in tool["fallback"]["reason"]
    assert any("falling back to the TorchScript exporter" in r.message for r in caplog.records)
    _assert_parity_floor(result.artifacts[0])


def test_opset_and_simplify(tmp_path):
    loaded = load_model("tiny_models:residual_cnn", input_shape=(1, 3, 16, 16))
    result = export_model(loaded, tmp_path, formats=("onnx",), opset=18, simplify=True)
    tool = result.artifacts[0]["tool"]
    assert tool["opset"] == 18
    assert tool["simplify"]["applied"] is True
    assert tool["simplify"]["max_abs_diff_vs_unsimplified"] < 1e-5
    _assert_parity_floor(result.artifacts[0])


def test_external_data_above_the_threshold(tmp_path, monkeypatch):
    """Weights over the threshold (2 GB in real use; lowered here) go to NAME.onnx.data."""
    import onnx

    from edgepipe.export import onnx as onnx_export

    monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_THRESHOLD", 1000)
    loaded = load_model("tiny_models:residual_cnn", input_shape=(1, 3, 16, 16))
    result = export_model(loaded, tmp_path, formats=("onnx",))
    artifact = result.artifacts[0]
    assert artifact["files"] == ["residual_cnn.onnx", "residual_cnn.onnx.data"]
    assert artifact["tool"]["external_data"] is True
    onnx.checker.check_model(str(tmp_path / "residual_cnn.onnx"))
    _assert_parity_floor(artifact)


def test_onnx_source_exports_onnx_and_openvino_but_not_tflite(cnn_export, tmp_path):
    _, out, _ = cnn_export
    source = load_model(str(out / "residual_cnn.onnx"))
    result = export_model(source, tmp_path / "from_onnx", formats=("onnx", "openvino"))
    for artifact in result.artifacts:
        _assert_parity_floor(artifact)
    assert result.artifacts[1]["tool"]["from"] == "onnx file"
    with pytest.raises(UnsupportedError) as info:
        export_model(source, tmp_path / "tfl", formats=("tflite",))
    assert info.value.reference == "tflite-from-onnx" and "torch model" in info.value.hint


def test_fp16_openvino_is_looser_but_close(tmp_path):
    loaded = load_model("tiny_models:residual_cnn", input_shape=(1, 3, 16, 16))
    result = export_model(loaded, tmp_path, formats=("openvino",), fp16=True)
    artifact = result.artifacts[0]
    assert artifact["precision"] == "fp16" and artifact["parity"]["atol"] == 1e-2
    _assert_parity_floor(artifact, max_diff=1e-2, sqnr=30.0)
    assert RunDir(tmp_path).artifact("residual_cnn.xml").tool["compress_to_fp16"] is True


def _specs(*texts: str):
    from edgepipe.tensors import parse_input_option

    return [parse_input_option(t) for t in texts]


def test_parity_on_data_the_verb_loads_and_splits(tmp_path, digits_mlp):
    loaded, splits = digits_mlp
    result = export_model(loaded, tmp_path / "spec", formats=("onnx",), data="builtin:digits",
                          samples=16, seed=3)
    inputs = result.artifacts[0]["parity"]["inputs"]
    assert inputs == {"kind": "data", "shapes": [[16, 64]], "source": "builtin:digits",
                      "split": "eval", "seed": 3, "count": 16}
    # ready Splits: their eval part, their seed
    given = export_model(loaded, tmp_path / "splits", formats=("onnx",), data=splits, samples=8)
    recorded = given.artifacts[0]["parity"]["inputs"]
    assert recorded["seed"] == splits.seed and recorded["count"] == 8
    manifest = json.loads((tmp_path / "spec" / "manifest.json").read_text())
    assert [s["step"] for s in manifest["steps"]] == ["export"]


def test_parity_samples_must_be_positive(tmp_path, digits_mlp):
    from edgepipe.errors import InputError

    with pytest.raises(InputError) as raised:
        export_model(digits_mlp[0], tmp_path / "o", data="builtin:digits", samples=0)
    assert raised.value.reference == "bad-samples"
    assert not (tmp_path / "o").exists()  # nothing written before the data is checked
