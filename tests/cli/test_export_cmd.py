"""``edgepipe export`` through the real CLI: results, manifest, failed parity, bad inputs."""

from __future__ import annotations

import json

import pytest


def _artifacts(out):
    return sorted(p.name for p in out.iterdir() if not p.name.startswith("."))


def test_export_json_document_and_manifest(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("export", "tiny_models:mlp", "--input-shape", "2x64", "-f", "onnx",
                 "-f", "tflite", "-o", out, "--json")
    assert result.code == 0, result
    document = result.json()  # litert-torch's progress prints did not reach stdout
    assert document["ok"] is True and document["command"] == "export"
    artifacts = document["result"]["artifacts"]
    assert [a["name"] for a in artifacts] == ["mlp.onnx", "mlp.tflite"]
    for artifact in artifacts:
        worst = max(o["max_abs_diff"] for o in artifact["parity"]["outputs"])
        assert worst < 1e-5 and artifact["parity"]["passed"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [a["name"] for a in manifest["artifacts"]] == ["mlp.onnx", "mlp.tflite"]
    assert _artifacts(out) == ["manifest.json", "mlp.onnx", "mlp.tflite"]


def test_human_output_is_a_table_and_a_summary_line(cli, tmp_path):
    result = cli("export", "tiny_models:mlp", "--input-shape", "1x64", "-o", tmp_path)
    assert result.code == 0, result
    assert "Exported mlp.onnx" in result.stdout and "SQNR" in result.stdout


def _corrupt_onnx_weight(monkeypatch):
    """Wrap the ONNX exporter so that it writes a model with one weight changed."""
    import onnx
    from onnx import numpy_helper

    from edgepipe.export import onnx as onnx_export

    real_export = onnx_export.export

    def broken_export(job):
        exported = real_export(job)
        proto = onnx.load(str(exported.path))
        weight = max(proto.graph.initializer, key=lambda t: len(t.dims) * 1000 + t.dims[0])
        array = numpy_helper.to_array(weight) + 0.5
        weight.CopyFrom(numpy_helper.from_array(array, weight.name))
        onnx.save(proto, str(exported.path))
        return exported

    monkeypatch.setattr(onnx_export, "export", broken_export)


def test_failed_parity_exits_1_and_keeps_the_artifact_renamed(cli, tmp_path, monkeypatch):
    _corrupt_onnx_weight(monkeypatch)
    out = tmp_path / "run"
    result = cli("export", "tiny_models:mlp", "--input-shape", "1x64", "-f", "onnx", "-o", out,
                 "--json")
    assert result.code == 1, result
    assert "error: tolerance-exceeded" in result.stderr and "hint:" in result.stderr
    assert "max|diff|" in result.stderr and "FAIL" in result.stderr
    assert "Traceback" not in result.stderr
    assert _artifacts(out) == ["manifest.json", "mlp.onnx.failed"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["artifacts"] == []
    assert manifest["steps"][-1]["result"]["failed"][0]["format"] == "onnx"
    error = result.json()["error"]
    failed = error["details"]["failed"][0]
    assert failed["parity"]["passed"] is False
    assert failed["parity"]["outputs"][0]["max_abs_diff"] > 1e-2


def test_failed_openvino_renames_both_files(cli, tmp_path, monkeypatch):
    from edgepipe.export import openvino as openvino_export

    real_export = openvino_export.export

    def zeroed_weights(job):
        exported = real_export(job)
        bin_file = exported.path.with_suffix(".bin")
        bin_file.write_bytes(bytes(bin_file.stat().st_size))
        return exported

    monkeypatch.setattr(openvino_export, "export", zeroed_weights)
    result = cli("export", "tiny_models:mlp", "--input-shape", "1x64", "-f", "openvino",
                 "-o", tmp_path)
    assert result.code == 1, result
    assert _artifacts(tmp_path) == ["manifest.json", "mlp.bin.failed", "mlp.xml.failed"]


@pytest.mark.parametrize("args, reference, words", [
    (["tiny_models:residual_cnn", "--input-shape", "1x5x16x16"], "forward-failed",
     "input of shape 1x5x16x16"),
    (["export_models:raising_model", "--input-shape", "1x8"], "forward-failed",
     "forward is not implemented"),
    (["tiny_models:mlp", "--input-shape", "1x64", "--atol", "-0.001"], "bad-tolerance",
     "negative"),
])
def test_bad_inputs_exit_1_with_a_hint_and_no_artifact(cli, tmp_path, args, reference, words):
    out = tmp_path / "run"
    result = cli("export", *args, "-o", out)
    assert result.code == 1, result
    assert f"error: {reference}" in result.stderr and words in result.stderr
    assert "hint:" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists() or not [p for p in _artifacts(out) if p != "manifest.json"]


def test_output_path_that_is_a_file(cli, tmp_path):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    result = cli("export", "tiny_models:mlp", "--input-shape", "1x64", "-o", target)
    assert result.code == 1, result
    assert "error: out-not-a-folder" in result.stderr and "hint:" in result.stderr
    assert target.read_text() == "not a folder"


def test_unknown_format_lists_the_valid_ones(cli, tmp_path):
    result = cli("export", "tiny_models:mlp", "--input-shape", "1x64", "-f", "coreml",
                 "-o", tmp_path)
    assert result.code == 2  # a usage error, from the enum
    assert all(name in result.stderr for name in ("coreml", "onnx", "tflite", "openvino"))


def test_tflite_from_an_onnx_source_is_unsupported(cli, tmp_path):
    assert cli("export", "tiny_models:mlp", "--input-shape", "1x64", "-o", tmp_path).code == 0
    result = cli("export", tmp_path / "mlp.onnx", "-f", "tflite", "-o", tmp_path / "again")
    assert result.code == 1, result
    assert "error: tflite-from-onnx" in result.stderr and "hint:" in result.stderr


def test_parity_data_that_does_not_fit_or_zero_samples(cli, tmp_path):
    import numpy as np

    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((4, 1, 8, 8), np.float32))
    result = cli("export", "builtin:digits-cnn", "--data", data, "-o", tmp_path / "out")
    assert result.code == 1 and "error: data-shape-mismatch" in result.stderr, result
    result = cli("export", "builtin:digits-cnn", "--data", "builtin:digits", "--samples", "0",
                 "-o", tmp_path / "out2")
    assert result.code == 1 and "error: bad-samples" in result.stderr, result
    assert not (tmp_path / "out2" / "digits-cnn.onnx").exists()
