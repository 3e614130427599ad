"""Run directory: atomic artifacts and a manifest that survives concurrent steps."""

from __future__ import annotations

import json
import threading

import pytest

from edgepipe.errors import InputError
from edgepipe.rundir import ArtifactRecord, RunDir


def _record(name: str) -> ArtifactRecord:
    return ArtifactRecord(name=name, path=f"{name}.onnx", format="onnx", precision="fp32",
                          size_bytes=3, sha256="0" * 64, inputs=[], outputs=[])


def test_stage_renames_only_on_success(tmp_path):
    run = RunDir(tmp_path / "out")
    with run.stage("model.onnx") as tmp:
        tmp.write_bytes(b"abc")
        assert not (run.path / "model.onnx").exists()
    assert (run.path / "model.onnx").read_bytes() == b"abc"

    with pytest.raises(RuntimeError), run.stage("broken.onnx") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("converter died")
    assert sorted(p.name for p in run.path.iterdir()) == ["model.onnx"]


def test_manifest_entries_replace_by_name_and_keep_others(tmp_path):
    run = RunDir(tmp_path)
    run.add_artifact(_record("a"))
    run.add_artifact(_record("b"))
    updated = _record("a")
    updated.precision = "int8"
    run.add_artifact(updated)
    document = json.loads((tmp_path / "manifest.json").read_text())
    assert document["schema_version"] == 1
    assert [(a["name"], a["precision"]) for a in document["artifacts"]] == [
        ("b", "fp32"), ("a", "int8")]


def test_concurrent_writers_lose_nothing(tmp_path):
    run = RunDir(tmp_path)
    threads = [threading.Thread(target=run.add_artifact, args=(_record(f"m{i}"),))
               for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(run.read_manifest().artifacts) == 16


def test_output_path_that_is_a_file(tmp_path):
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder") as info:
        RunDir(target)
    assert info.value.reference == "out-not-a-folder"


def test_reject_renames_a_failed_artifact(tmp_path):
    run = RunDir(tmp_path)
    path = tmp_path / "model.tflite"
    path.write_bytes(b"x")
    rejected = run.reject(path)
    assert rejected.name == "model.tflite.failed" and not path.exists()


def test_atomic_writes_get_the_mode_open_would_give(tmp_path):
    import os
    import stat

    from edgepipe.rundir import atomic_write_bytes

    previous = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "report.html", b"<html></html>")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "report.html").stat().st_mode) == 0o644


def test_the_manifest_is_typed_and_reads_back_as_written(tmp_path):
    from edgepipe.rundir import Manifest, ManifestStep
    from edgepipe.tensors import TensorSpec

    run = RunDir(tmp_path)
    record = _record("a")
    record.inputs = ArtifactRecord.tensor_list([TensorSpec("x", (1, 3, "h"), "float32")])
    run.add_artifact(record)
    run.add_step(ManifestStep("export", {"formats": ["onnx"]}, {"artifacts": ["a"]}))
    manifest = run.read_manifest()
    assert isinstance(manifest, Manifest)
    assert manifest.artifacts[0].inputs == [TensorSpec("x", (1, 3, "h"), "float32")]
    assert manifest.steps[0].step == "export" and manifest.steps[0].result == {"artifacts": ["a"]}
    assert run.artifact("a").sha256 == "0" * 64 and run.artifact("b") is None
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk["artifacts"][0]["inputs"] == [
        {"name": "x", "shape": [1, 3, "h"], "dtype": "float32"}]
    assert list(on_disk) == ["schema_version", "artifacts", "steps"]
    assert list(on_disk["steps"][0]) == ["step", "config", "result", "finished"]
    assert manifest.to_dict() == on_disk


def test_a_manifest_from_before_the_version_field_reads_and_keeps_unknown_keys(tmp_path):
    old = {"artifacts": [{"name": "a", "path": "a.onnx", "format": "onnx", "precision": "fp32",
                          "size_bytes": 3, "sha256": "0" * 64, "inputs": [], "outputs": [],
                          "written_by": "a hand"}],
           "steps": [{"step": "export", "config": {}, "result": {}}], "note": "kept"}
    (tmp_path / "manifest.json").write_text(json.dumps(old))
    run = RunDir(tmp_path)
    manifest = run.read_manifest()
    assert manifest.schema_version == 1 and manifest.artifacts[0].files == []
    run.add_artifact(_record("b"))
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk["schema_version"] == 1 and on_disk["note"] == "kept"
    assert on_disk["artifacts"][0]["written_by"] == "a hand"
    assert [a["name"] for a in on_disk["artifacts"]] == ["a", "b"]


def test_a_manifest_artifact_without_its_required_keys_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"schema_version": 1, "artifacts": [{"name": "a"}], "steps": []}))
    with pytest.raises(InputError, match="'path' is missing") as info:
        RunDir(tmp_path)
    assert info.value.reference == "manifest-invalid" and info.value.hint
