"""Issue 17: crafted and broken model files, and plain bad input, through the real CLI.

Each case must end in exit 1 with ``error: REFERENCE`` and a hint, no traceback and no
"internal-error"; a crafted .pt2 must not run its code (the marker file stays absent)."""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import tiny_models
from cli_failures import expect_failure

CNN = "builtin:digits-cnn"  # 1x3x32x32 in, 10 classes


# --- .pt2 archives that would unpickle ----------------------------------------------------

class _RunsCode:
    """Unpickling this writes the marker file: proof that code from the archive ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > '{self.marker}'",))


def _exported(tmp_path: Path) -> Path:
    path = tmp_path / "clean.pt2"
    model = tiny_models.mlp().eval()
    torch.export.save(torch.export.export(model, (torch.zeros(1, 64),)), path)
    return path


def _rewrite(source: Path, target: Path, change) -> Path:
    """Copy a zip, letting ``change(relative_name, data)`` return new bytes (or None to keep)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info.filename)
            relative = info.filename.split("/", 1)[1]
            replaced = change(relative, data)
            new.writestr(info, data if replaced is None else replaced)
    return target


def _pickled_weight(source: Path, target: Path, payload) -> Path:
    """The archive with its first weight switched to ``use_pickle`` and replaced by a
    torch.save of ``payload()``."""
    with zipfile.ZipFile(source) as archive:
        name = next(n for n in archive.namelist() if n.endswith("model_weights_config.json"))
        config = json.loads(archive.read(name))
    first = next(iter(config["config"]))
    config["config"][first]["use_pickle"] = True
    weight_file = "data/weights/" + config["config"][first]["path_name"]

    def change(relative: str, data: bytes):
        if relative.endswith("model_weights_config.json"):
            return json.dumps(config).encode()
        if relative == weight_file:
            buffer = io.BytesIO()
            torch.save(payload(), buffer)
            return buffer.getvalue()
        return None

    return _rewrite(source, target, change)


def _crafted_pt2(tmp_path: Path, marker: Path) -> Path:
    return _pickled_weight(_exported(tmp_path), tmp_path / "crafted.pt2",
                           lambda: _RunsCode(marker))


def _crafted_sample_inputs(tmp_path: Path, marker: Path) -> Path:
    """torch reads sample inputs with weights_only=True, then silently retries with full
    pickle: a crafted sample-inputs member is a second way in."""
    buffer = io.BytesIO()
    torch.save(((_RunsCode(marker),), {}), buffer)

    def change(relative: str, data: bytes):
        return buffer.getvalue() if relative.startswith("data/sample_inputs/") else None

    return _rewrite(_exported(tmp_path), tmp_path / "crafted-inputs.pt2", change)


def _crafted_opaque_constant(tmp_path: Path, marker: Path) -> Path:
    """A constant named opaque_obj_* is read with pickle.loads."""
    import pickle

    def change(relative: str, data: bytes):
        if relative.endswith("model_constants_config.json"):
            return json.dumps({"config": {"c": {"path_name": "opaque_obj_0", "is_param": False,
                                                "use_pickle": True, "tensor_meta": None}}}
                              ).encode()
        return None

    path = _rewrite(_exported(tmp_path), tmp_path / "crafted-constant.pt2", change)
    with zipfile.ZipFile(path, "a") as archive:
        root = archive.namelist()[0].split("/", 1)[0]
        archive.writestr(f"{root}/data/constants/opaque_obj_0", pickle.dumps(_RunsCode(marker)))
    return path


CRAFTED = {"pickled-weight": _crafted_pt2, "sample-inputs": _crafted_sample_inputs,
           "opaque-constant": _crafted_opaque_constant}


def _verb_args(verb: str, path: Path, tmp_path: Path) -> list[object]:
    if verb == "inspect":
        return ["inspect", path]
    data = tmp_path / "data.npz"
    np.savez(data, x=np.zeros((4, 64), np.float32), y=np.zeros(4, np.int64))
    if verb == "eval":
        return ["eval", path, "--data", data, "--subset", "all"]
    return ["profile", path, "--runs", 2, "--duration", 0, "--warmup", 0, "--no-per-layer",
            "--no-energy"]


@pytest.mark.parametrize("crafted", list(CRAFTED))
@pytest.mark.parametrize("verb", ["inspect", "eval", "profile"])
def test_crafted_pt2_runs_no_code(cli, tmp_path, verb, crafted):
    marker = tmp_path / "marker"
    path = CRAFTED[crafted](tmp_path, marker)
    result = cli(*_verb_args(verb, path, tmp_path))
    assert not marker.exists(), "code from the archive ran"
    expect_failure(result, "pickle-refused", "--trust-pickle")


def test_trust_pickle_loads_a_legitimate_pickled_weight(cli, tmp_path):
    clean = _exported(tmp_path)
    with zipfile.ZipFile(clean) as archive:
        name = next(n for n in archive.namelist() if n.endswith("model_weights_config.json"))
        first = next(iter(json.loads(archive.read(name))["config"].values()))
        weight = torch.frombuffer(bytearray(archive.read(
            f"{name.split('/')[0]}/data/weights/{first['path_name']}")), dtype=torch.float32)
    shape = [d["as_int"] for d in first["tensor_meta"]["sizes"]]
    tensor = torch.nn.Parameter(weight[: int(np.prod(shape))].reshape(shape).clone())
    path = _pickled_weight(clean, tmp_path / "pickled.pt2", lambda: tensor)
    expect_failure(cli("inspect", path), "pickle-refused", "--trust-pickle")
    for verb in ("inspect", "eval", "profile"):
        result = cli(*_verb_args(verb, path, tmp_path), "--trust-pickle")
        assert result.code == 0, (verb, result)


def test_a_clean_pt2_needs_no_trust(cli, tmp_path):
    assert cli("inspect", _exported(tmp_path)).code == 0


# --- broken or mislabelled artifacts ------------------------------------------------------

def _truncate(source: Path, target: Path, keep: float = 0.5) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def _bad_artifact(case: str, artifacts: Path, tmp_path: Path) -> Path:
    """One broken file (with its siblings where the case needs them) in tmp_path."""
    onnx, xml, tflite = (artifacts / f"digits-cnn.{s}" for s in ("onnx", "xml", "tflite"))
    if case == "truncated-tflite":
        return _truncate(tflite, tmp_path / "m.tflite")
    if case == "zero-byte-tflite":
        (tmp_path / "m.tflite").write_bytes(b"")
        return tmp_path / "m.tflite"
    if case == "onnx-renamed-tflite":
        return Path(shutil.copy(onnx, tmp_path / "m.tflite"))
    if case == "text-named-xml":
        (tmp_path / "m.xml").write_text("these are my notes, not a model\n")
        return tmp_path / "m.xml"
    if case == "xml-without-bin":
        return Path(shutil.copy(xml, tmp_path / "m.xml"))
    if case == "truncated-bin":
        shutil.copy(xml, tmp_path / "m.xml")
        _truncate(xml.with_suffix(".bin"), tmp_path / "m.bin")
        return tmp_path / "m.xml"
    if case == "zero-byte-xml":
        (tmp_path / "m.xml").write_bytes(b"")
        shutil.copy(xml.with_suffix(".bin"), tmp_path / "m.bin")
        return tmp_path / "m.xml"
    if case == "tflite-renamed-onnx":
        return Path(shutil.copy(tflite, tmp_path / "m.onnx"))
    raise AssertionError(case)


BAD_ARTIFACTS = {
    "truncated-tflite": ("tflite-invalid", "truncated"),
    "zero-byte-tflite": ("tflite-invalid", "empty (0 bytes)"),
    "onnx-renamed-tflite": ("tflite-invalid", "not a TFLite flatbuffer", "ONNX protobuf"),
    "text-named-xml": ("openvino-invalid", "plain text"),
    "xml-without-bin": ("openvino-invalid", "m.bin", "there is none"),
    "truncated-bin": ("openvino-invalid", "bytes of weights"),
    "zero-byte-xml": ("openvino-invalid", "empty (0 bytes)"),
    "tflite-renamed-onnx": ("onnx-invalid", "TFLite flatbuffer"),
}


@pytest.mark.parametrize("case", list(BAD_ARTIFACTS))
def test_eval_of_a_broken_artifact(cli, tmp_path, digits_artifacts, case):
    path = _bad_artifact(case, digits_artifacts, tmp_path)
    expect_failure(cli("eval", path, "--data", "builtin:digits"), *BAD_ARTIFACTS[case])


@pytest.mark.parametrize("case", ["truncated-tflite", "zero-byte-tflite", "onnx-renamed-tflite"])
def test_targets_check_of_a_broken_tflite(cli, tmp_path, digits_artifacts, case):
    path = _bad_artifact(case, digits_artifacts, tmp_path)
    expect_failure(cli("targets", "check", path, "stm32f746"), *BAD_ARTIFACTS[case])


def test_profile_of_a_broken_artifact_fails_before_measuring(cli, tmp_path, digits_artifacts):
    path = _bad_artifact("truncated-bin", digits_artifacts, tmp_path)
    expect_failure(cli("profile", path, "--save", tmp_path / "p.json"),
                    *BAD_ARTIFACTS["truncated-bin"])
    assert not (tmp_path / "p.json").exists()


# --- plain bad input ----------------------------------------------------------------------

@pytest.mark.parametrize("rate", ["0Mbps", "0.0kbps", "-5Mbps", "nanMbps", ".Mbps"])
def test_split_plan_bandwidth_that_is_not_a_positive_rate(cli, rate):
    expect_failure(cli("split", "plan", CNN, "--device", "rpi5", "--bandwidth", rate),
                    "bad-bandwidth", repr(rate))


def test_split_with_labels_beyond_the_models_classes(cli, tmp_path):
    data = tmp_path / "data.npz"
    x = np.random.default_rng(0).random((40, 3, 32, 32), dtype=np.float32)
    np.savez(data, x=x, y=np.arange(40) % 13)  # digits-cnn has 10 classes
    out = tmp_path / "out"
    result = cli("split", CNN, "--at", "pool2", "--bottleneck", "4", "--data", data, "-o", out,
                 "--distill-epochs", 1, "--finetune-epochs", 1)
    expect_failure(result, "labels-out-of-range", "10 classes", "12")
    assert not out.exists() or not any(out.iterdir())


def test_run_of_a_recipe_that_is_not_text(cli, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    out = tmp_path / "out"
    expect_failure(cli("run", recipe, "-o", out), "bad-recipe", "not UTF-8 text")
    assert not out.exists()


def test_profile_on_cpus_this_machine_lacks(cli, digits_artifacts):
    usable = sorted(os.sched_getaffinity(0))
    expect_failure(cli("profile", digits_artifacts / "digits-cnn.onnx", "--cpus",
                        max(usable) + 97), "bad-cpus", str(max(usable) + 97))


def test_profile_save_into_a_missing_folder_fails_before_measuring(cli, tmp_path,
                                                                   digits_artifacts):
    save = tmp_path / "missing-folder" / "p.json"
    result = cli("profile", digits_artifacts / "digits-cnn.onnx", "--save", save)
    expect_failure(result, "save-not-writable", "missing-folder", "nothing was measured")
    assert "latency" not in result.stdout


def test_profile_that_cannot_be_saved_is_printed(cli, tmp_path, digits_artifacts, monkeypatch):
    import edgepipe.rundir

    def full_disk(path, document):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(edgepipe.rundir, "atomic_write_json", full_disk)
    result = cli("profile", digits_artifacts / "digits-cnn.onnx", "--runs", 2, "--duration", 0,
                 "--no-per-layer", "--no-energy", "--save", tmp_path / "p.json")
    expect_failure(result, "save-failed", "No space left", "not lost")
    assert json.loads(result.stdout)["latency"]["steady"]["count"] >= 2


# --- TFLite Micro refusals in plain words -------------------------------------------------

def test_tflm_refusal_names_the_operator_and_its_limit(cli, tmp_path):
    from edgepipe.export.api import export_model
    from edgepipe.model import load_model

    loaded = load_model("tiny_models:concat_many", input_shape=(1, 3, 8, 8))
    export_model(loaded, tmp_path, formats=("tflite",))
    path = next(tmp_path.glob("*.tflite"))
    result = cli("targets", "check", path, "stm32f746")
    expect_failure(result, "tflm-refused", "CONCATENATION takes at most 10 inputs in TFLite "
                    "Micro", "has 11 inputs", "concatenation.cc")  # the raw line as detail
    assert "stages" in result.stderr.split("hint:")[1]


@pytest.mark.parametrize("case", ["truncated", "onnx-renamed"])
def test_weights_file_that_is_not_complete_safetensors(cli, tmp_path, digits_artifacts, case):
    from edgepipe.zoo import weights_path

    path = tmp_path / "w.safetensors"
    if case == "truncated":
        _truncate(weights_path("digits-cnn"), path)
        words = ("truncated", "need")
    else:
        shutil.copy(digits_artifacts / "digits-cnn.onnx", path)
        words = ("not a safetensors file", "ONNX protobuf")
    expect_failure(cli("inspect", CNN, "--weights", path), "weights-invalid", *words)


@pytest.mark.parametrize("case", ["truncated", "onnx-renamed", "zero-byte"])
@pytest.mark.parametrize("verb", ["inspect", "eval"])
def test_broken_pt2(cli, tmp_path, digits_artifacts, verb, case):
    path = tmp_path / "m.pt2"
    if case == "truncated":
        _truncate(_exported(tmp_path), path)
        words = ("not a readable zip archive",)
    elif case == "onnx-renamed":
        shutil.copy(digits_artifacts / "digits-cnn.onnx", path)
        words = ("is a zip", "ONNX protobuf")
    else:
        path.write_bytes(b"")
        words = ("empty (0 bytes)",)
    expect_failure(cli(*_verb_args(verb, path, tmp_path)), "pt2-invalid", *words)


def test_the_agent_on_a_device_refuses_cpus_it_lacks():
    """On a device (--host) the CPUs are checked where the agent runs, with its own list."""
    from edgepipe.profiling.agent import agent

    usable = sorted(os.sched_getaffinity(0))
    with pytest.raises(agent.AgentError) as error:
        agent.profile({"cpus": [max(usable) + 97]})
    assert error.value.reference == "bad-cpus" and str(usable) in str(error.value)
    assert sorted(os.sched_getaffinity(0)) == usable


def test_pt2_with_a_member_stored_twice_is_refused(cli, tmp_path):
    """Two zip entries of one name: Python's zipfile and torch's miniz may read different
    copies, so no check of one copy can vouch for what torch loads."""
    marker = tmp_path / "marker"
    crafted = _crafted_pt2(tmp_path, marker)
    path = tmp_path / "twice.pt2"
    with zipfile.ZipFile(_exported(tmp_path)) as clean, zipfile.ZipFile(crafted) as bad, \
            zipfile.ZipFile(path, "w") as out:
        for info in clean.infolist():
            out.writestr(info, clean.read(info.filename))
        config = next(n for n in bad.namelist() if n.endswith("model_weights_config.json"))
        with pytest.warns(UserWarning, match="Duplicate name"):
            out.writestr(config, bad.read(config))
    expect_failure(cli("inspect", path), "pickle-refused", "stored twice")
    assert not marker.exists()


def _labels_beyond_ten(tmp_path: Path) -> Path:
    data = tmp_path / "labels.npz"
    x = np.random.default_rng(0).random((40, 3, 32, 32), dtype=np.float32)
    np.savez(data, x=x, y=np.arange(40) % 13)
    return data


def test_compress_and_eval_check_labels_before_work(cli, tmp_path, digits_artifacts):
    data = _labels_beyond_ten(tmp_path)
    out = tmp_path / "out"
    expect_failure(cli("compress", CNN, "--method", "w4a8", "--data", data, "-o", out),
                    "labels-out-of-range", "10 classes")
    assert not out.exists()
    expect_failure(cli("eval", digits_artifacts / "digits-cnn.onnx", "--data", data),
                    "labels-out-of-range", "10 classes")
