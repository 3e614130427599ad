"""The public Python API: docs/python-api.md's script runs, every public name resolves,
``import edgepipe`` stays light, and the verbs take in-memory modules and arrays."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import edgepipe
from edgepipe.errors import DataError, InputError, ShapeError

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "python-api.md"


def _env() -> dict[str, str]:
    paths = [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def test_the_documented_script_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1
    (tmp_path / "script.py").write_text(blocks[0])
    done = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"-> \S+\.int8\.onnx", done.stdout), done.stdout
    assert re.search(r"top-1 \d+\.\d\d% on 397 samples in onnxruntime", done.stdout), done.stdout
    assert re.search(r"p50 \d+\.\d+ ms \(measured on host\)", done.stdout), done.stdout
    manifest = json.loads((tmp_path / "out" / "int8" / "manifest.json").read_text())
    int8 = [a for a in manifest["artifacts"] if a["precision"] == "int8"]
    assert int8 and int8[0]["source"]["options"]["source"] == "in-memory nn.Module"


def test_import_edgepipe_imports_neither_torch_nor_numpy():
    code = ("import sys, edgepipe; heavy = [m for m in ('torch', 'numpy', 'onnx', 'typer') "
            "if m in sys.modules]; print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_every_public_name_resolves():
    assert len(edgepipe.__all__) == len(set(edgepipe.__all__))
    for name in edgepipe.__all__:
        assert getattr(edgepipe, name) is not None, name
        assert name in dir(edgepipe)
    assert issubclass(edgepipe.ShapeError, edgepipe.EdgepipeError)
    with pytest.raises(AttributeError):
        edgepipe.no_such_name  # noqa: B018


def test_the_verbs_are_functions_beside_the_packages_that_implement_them():
    import edgepipe.compress.api  # importing a submodule binds the package attribute
    import edgepipe.export.api  # noqa: F401

    for name in ("export", "compress", "evaluate", "split", "profile"):
        verb = getattr(edgepipe, f"{name}_model")
        assert callable(verb) and verb.__module__ == "edgepipe.api", name
    assert edgepipe.export is sys.modules["edgepipe.export"]  # the package, untouched


class TwoInputs(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(6, 3)

    def forward(self, image, extra):
        return self.linear(torch.cat([image.flatten(1), extra], dim=1))


def test_an_nn_module_with_example_inputs_is_exported(tmp_path):
    model = TwoInputs()
    result = edgepipe.export_model(model, tmp_path / "out",
                             example_inputs=(torch.randn(2, 1, 2, 2), np.zeros((2, 2), "float32")))
    assert isinstance(result, edgepipe.ExportResult) and result.ok
    record = result.artifacts[0]
    assert record["name"] == "TwoInputs.onnx"
    assert [(t["name"], t["shape"]) for t in record["inputs"]] == [
        ("image", [2, 1, 2, 2]), ("extra", [2, 2])]
    options = record["source"]["options"]
    assert options["class"].endswith("TwoInputs") and len(options["state_sha256"]) == 64
    assert not model.training


def test_example_inputs_set_a_spec_strings_shapes(tmp_path):
    loaded = edgepipe.as_loaded("builtin:digits-mlp", np.zeros((4, 64), "float32"))
    assert loaded.inputs == [edgepipe.TensorSpec("input", (4, 64), "float32")]


@pytest.mark.parametrize(("model", "examples", "error", "reference"), [
    (torch.nn.Linear(4, 2), None, ShapeError, "example-inputs-needed"),
    (torch.nn.Linear(4, 2), [1, 2], ShapeError, "bad-example-inputs"),
    (torch.nn.Linear(4, 2), torch.zeros(1, 5), ShapeError, "forward-failed"),
    (object(), None, InputError, "model-type"),
])
def test_a_model_edgepipe_cannot_use_is_an_error(model, examples, error, reference):
    with pytest.raises(error) as caught:
        edgepipe.as_loaded(model, examples)
    assert caught.value.reference == reference and caught.value.hint


def test_a_loaded_model_with_example_inputs_is_an_error():
    loaded = edgepipe.load_model("builtin:digits-mlp")
    assert edgepipe.as_loaded(loaded) is loaded
    with pytest.raises(InputError, match="already loaded"):
        edgepipe.as_loaded(loaded, torch.zeros(1, 64))


def test_arrays_become_a_dataset_shaped_for_the_model():
    inputs = [edgepipe.TensorSpec("input", (1, 64), "float32")]
    x = torch.rand(10, 64, dtype=torch.float64)
    dataset = edgepipe.as_dataset((x, np.arange(10) % 3), inputs, num_classes=3)
    assert dataset.inputs["input"].dtype == np.float32 and dataset.source == "arrays"
    assert dataset.labels.tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    assert dataset.labels is not None and len(edgepipe.as_dataset(x.numpy(), inputs)) == 10
    with pytest.raises(DataError) as caught:
        edgepipe.as_dataset((x, np.full(10, 0.5)), inputs)
    assert caught.value.reference == "labels-not-integer"
    with pytest.raises(ShapeError):
        edgepipe.as_dataset(np.zeros((10, 63), "float32"), inputs)
    with pytest.raises(DataError) as caught:
        edgepipe.as_dataset({"x"}, inputs)
    assert caught.value.reference == "data-type"


def test_compress_takes_a_method_name_with_options_or_a_config(tmp_path):
    with pytest.raises(InputError) as caught:
        edgepipe.compress_model("builtin:digits-mlp", edgepipe.Fp16Config(), tmp_path / "o",
                          formats=("onnx",))
    assert caught.value.reference == "conflicting-options"
    result = edgepipe.compress_model("builtin:digits-mlp", "fp16", tmp_path / "o",
                               data="builtin:digits")
    assert isinstance(result, edgepipe.CompressResult)
    measured = edgepipe.evaluate_model(result, "builtin:digits")
    assert isinstance(measured, edgepipe.EvalResult) and measured.metric == "top1"
    assert measured.value > 0.9 and measured.samples == 359


def test_a_result_of_several_artifacts_names_none(tmp_path):
    from edgepipe.api import artifact_path

    result = edgepipe.ExportResult(tmp_path, artifacts=[{"name": "a.onnx", "path": "a.onnx"},
                                                        {"name": "b.xml", "path": "b.xml"}])
    with pytest.raises(InputError) as caught:
        artifact_path(result)
    assert caught.value.reference == "ambiguous-artifact"
    with pytest.raises(InputError) as caught:
        artifact_path(3)
    assert caught.value.reference == "artifact-type"


def test_options_that_make_no_config_are_errors(tmp_path):
    with pytest.raises(InputError) as caught:
        edgepipe.export_model("builtin:digits-mlp", tmp_path / "o", formats=("onnx",), bogus=1)
    assert caught.value.reference == "unknown-option" and "bogus" in caught.value.message
    with pytest.raises(InputError) as caught:
        edgepipe.split_model("builtin:digits-cnn", data="builtin:digits", out=tmp_path / "o", at="x")
    assert caught.value.reference == "unknown-option" and "bottleneck" in caught.value.message
    assert not (tmp_path / "o").exists()


def test_split_takes_an_nn_module(tmp_path):
    module = edgepipe.load_model("builtin:digits-cnn").module
    training = edgepipe.SplitTraining(distill_epochs=1, finetune_epochs=1)
    record = edgepipe.split_model(module, data="builtin:digits", out=tmp_path / "split",
                            example_inputs=torch.zeros(1, 3, 32, 32), at="pool2",
                            bottleneck=2, training=training)
    assert record.accuracy["split_onnxruntime"] > 0.3
    assert record.bytes_per_sample["packed_bytes"] == 2 * 8 * 8
    steps = json.loads((tmp_path / "split" / "manifest.json").read_text())["steps"]
    assert steps[-1]["step"] == "split" and steps[-1]["config"]["bottleneck"] == 2


def test_profile_estimates_a_device_it_does_not_reach(tmp_path):
    exported = edgepipe.export_model("builtin:digits-mlp", tmp_path / "o")
    profile = edgepipe.profile_model(exported, "rpi4b")
    assert isinstance(profile, edgepipe.Profile) and profile.mode == "estimated"
    assert profile.target == "rpi4b" and profile.p50_ms > 0 and profile.peak_rss_bytes is None
    assert profile.artifact == tmp_path / "o" / "digits-mlp.onnx"
    assert profile.size_bytes == profile.to_dict()["artifact"]["size_bytes"]["value"] > 0
    with pytest.raises(InputError) as caught:
        edgepipe.profile_model(exported, cpus="one", runs=1)
    assert caught.value.reference == "bad-cpus"
