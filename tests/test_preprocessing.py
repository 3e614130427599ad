"""Preprocessing travels with the artifact: recorded in manifest.json by export, compress and
split, used by eval by default, and an explicit --normalize that differs warns."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from edgepipe.data import Preprocessing, choose_normalize, load_data
from edgepipe.rundir import ArtifactRecord, RunDir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def int8_none(tmp_path_factory):
    """The digits CNN compressed to int8 ONNX from builtin:digits read with --normalize none
    (values 0..16, not the default 0..1), as `edgepipe compress --json` reported it."""
    from edgepipe.cli.main import run

    out = tmp_path_factory.mktemp("int8-none")
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
        code = run(["compress", "builtin:digits-cnn", "--method", "int8", "-f", "onnx",
                    "--data", "builtin:digits", "--normalize", "none", "-o", str(out),
                    "--json"])
    assert code == 0, stdout.getvalue()[-2000:]
    return out, json.loads(stdout.getvalue())["result"]


def test_load_data_says_how_it_prepared_the_data(tmp_path):
    from PIL import Image

    for name, colour in (("blue", (0, 0, 255)), ("red", (255, 0, 0))):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.new("RGB", (6, 4), colour).save(tmp_path / name / f"{i}.png")
    folder = load_data(tmp_path, image_size=(8, 8), normalize="imagenet", layout="NHWC")
    prepared = folder.preprocessing
    assert prepared == Preprocessing(
        source=str(tmp_path), normalize="imagenet", scale=1 / 255, mean=[0.485, 0.456, 0.406],
        std=[0.229, 0.224, 0.225], layout="NHWC", resize=[8, 8], channel_order="RGB",
        labels=["blue", "red"])
    # the recorded formula gives the arrays the loader made
    red = np.array([255.0, 0, 0])
    assert np.allclose(folder.x[-1, 0, 0], (red * prepared.scale - prepared.mean) / prepared.std,
                       atol=1e-5)
    gray = load_data(tmp_path, channels=1, normalize="none").preprocessing
    assert (gray.channel_order, gray.scale, gray.resize, gray.layout) == ("gray", 1.0, None,
                                                                          "NCHW")

    digits = load_data("builtin:digits").preprocessing  # 64 features, 0..16 scaled to 0..1
    assert (digits.normalize, digits.scale, digits.layout, digits.resize) == ("unit", 1 / 16,
                                                                             None, None)
    assert digits.labels == [str(i) for i in range(10)]
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 3), np.float32))
    assert load_data(tmp_path / "d.npz").preprocessing == Preprocessing(str(tmp_path / "d.npz"),
                                                                        None)
    # the parts of a split keep it
    from edgepipe.data import make_splits

    assert make_splits(load_data("builtin:digits"), seed=0).eval.preprocessing == \
        load_data("builtin:digits").preprocessing


def test_compress_records_it_and_eval_uses_it(int8_none, cli):
    out, result = int8_none
    manifest = RunDir(out).read_manifest()
    int8 = manifest.artifact("digits-cnn.int8.onnx")
    assert int8 is not None and int8.preprocessing.normalize == "none"
    assert int8.preprocessing.scale == 1.0 and int8.preprocessing.resize == [32, 32]
    assert int8.preprocessing.labels == [str(i) for i in range(10)]
    assert manifest.artifact("digits-cnn.onnx").preprocessing == int8.preprocessing
    raw = json.loads((out / "manifest.json").read_text())
    assert raw["artifacts"][-1]["preprocessing"]["normalize"] == "none"
    assert result["artifacts"][0]["preprocessing"] == int8.preprocessing.to_dict()

    # eval without --normalize: the accuracy compress measured, on the same samples
    measured = result["artifacts"][0]["metrics"]
    ran = cli("eval", out / "digits-cnn.int8.onnx", "--data", "builtin:digits", "--json")
    assert ran.code == 0, ran
    assert ran.json()["result"]["value"] == pytest.approx(measured["value"], abs=1e-9)
    assert ran.json()["result"]["samples"] == measured["samples"]
    assert "normalize" not in ran.stderr

    # the default normalization (unit) prepares the digits differently: another accuracy,
    # and a warning naming the recorded one
    other = cli("eval", out / "digits-cnn.int8.onnx", "--data", "builtin:digits",
                "--normalize", "unit", "--json")
    assert other.code == 0, other
    assert other.json()["result"]["value"] != pytest.approx(measured["value"], abs=1e-9)
    assert "--normalize none" in other.stderr and "--normalize unit" in other.stderr
    # asking for what was recorded does not warn
    same = cli("eval", out / "digits-cnn.int8.onnx", "--data", "builtin:digits",
               "--normalize", "none", "--json")
    assert same.json()["result"]["value"] == ran.json()["result"]["value"]
    assert "normalize" not in same.stderr


def test_an_old_manifest_without_it_still_works(int8_none, tmp_path, cli):
    out, _ = int8_none
    old = tmp_path / "old"
    old.mkdir()
    document = json.loads((out / "manifest.json").read_text())
    for record in document["artifacts"]:
        del record["preprocessing"]
    (old / "manifest.json").write_text(json.dumps(document))
    (old / "digits-cnn.int8.onnx").write_bytes((out / "digits-cnn.int8.onnx").read_bytes())
    record = RunDir(old).read_manifest().artifact("digits-cnn.int8.onnx")
    assert record is not None and not record.preprocessing
    assert "preprocessing" not in record.to_dict()
    # eval falls back to the loader's default (unit), without a warning
    ran = cli("eval", old / "digits-cnn.int8.onnx", "--data", "builtin:digits", "--json")
    assert ran.code == 0, ran
    unit = cli("eval", out / "digits-cnn.int8.onnx", "--data", "builtin:digits",
               "--normalize", "unit", "--json")
    assert ran.json()["result"]["value"] == unit.json()["result"]["value"]
    assert "normalize" not in ran.stderr
    # a broken manifest beside an artifact does not stop eval
    (old / "manifest.json").write_text("{not json")
    assert cli("eval", old / "digits-cnn.int8.onnx", "--data", "builtin:digits").code == 0


def test_export_with_data_records_it_per_artifact_layout(tmp_path):
    from edgepipe.export.api import export_model

    export_model("builtin:digits-cnn", tmp_path / "with", formats=("onnx",),
                 data="builtin:digits", samples=8)
    record = RunDir(tmp_path / "with").read_manifest().artifact("digits-cnn.onnx")
    assert record.preprocessing.source == "builtin:digits"
    assert record.preprocessing.layout == record.layout[record.inputs[0].name] == "NCHW"
    export_model("builtin:digits-cnn", tmp_path / "without", formats=("onnx",))
    assert not RunDir(tmp_path / "without").read_manifest().artifact(
        "digits-cnn.onnx").preprocessing
    assert Preprocessing("d", "unit", layout="NCHW").with_layout("NHWC").layout == "NHWC"
    assert Preprocessing("d", None).with_layout("NHWC").layout is None


def test_choose_normalize_and_the_label_check(caplog):
    from edgepipe.data import check_labels_match

    recorded = Preprocessing("builtin:digits", "imagenet", labels=["cat", "dog"])
    with caplog.at_level(logging.WARNING, logger="edgepipe"):
        assert choose_normalize(recorded, None, "m.onnx") == "imagenet"
        assert choose_normalize(None, None, "m.onnx") is None
        assert choose_normalize(Preprocessing("d.npz", None), "unit", "m.onnx") == "unit"
        assert not caplog.records
        assert choose_normalize(recorded, "unit", "m.onnx") == "unit"
        assert "m.onnx was made with --normalize imagenet" in caplog.text
        caplog.clear()
        check_labels_match(recorded, ["cat", "dog"], "m.onnx")
        check_labels_match(recorded, None, "m.onnx")
        assert not caplog.records
        check_labels_match(recorded, ["cat", "cow", "dog"], "m.onnx")
        assert "differ from those m.onnx was made with (cat, dog)" in caplog.text


def test_the_manifest_schema_describes_the_field():
    schema = json.loads((ROOT / "docs" / "schemas" / "manifest.v1.schema.json").read_text())
    record = schema["$defs"]["ArtifactRecord"]
    assert record["properties"]["preprocessing"] == {
        "$ref": "#/$defs/Preprocessing",
        "description": ArtifactRecord.__dataclass_fields__["preprocessing"].metadata["doc"]}
    assert "preprocessing" not in record["required"]
    fields = schema["$defs"]["Preprocessing"]["properties"]
    assert {"normalize", "scale", "mean", "std", "layout", "resize", "channel_order",
            "labels"} <= set(fields)
    compress = json.loads((ROOT / "docs" / "schemas" / "command-compress.v1.schema.json")
                          .read_text())
    assert "preprocessing" in compress["$defs"]["ArtifactRecord"]["properties"]


def test_profile_prepares_its_data_as_recorded(int8_none, cli):
    out, _ = int8_none
    quick = ["--runs", 2, "--duration", 0, "--warmup", 0, "--no-per-layer", "--no-energy",
             "--energy-window", 0]
    artifact = out / "digits-cnn.int8.onnx"
    ran = cli("profile", artifact, "--data", "builtin:digits", *quick, "--json")
    assert ran.code == 0, ran
    assert "normalize" not in ran.stderr
    other = cli("profile", artifact, "--data", "builtin:digits", "--normalize", "imagenet",
                *quick, "--json")
    assert "--normalize none" in other.stderr and "--normalize imagenet" in other.stderr


def test_normalize_for_an_artifact(int8_none, caplog):
    """What eval, profile and split run (for the head) call: the record's choice for an image
    source, the option as given for an .npz or arrays."""
    from edgepipe.recorded import normalize_for, recorded_preprocessing

    out, _ = int8_none
    artifact = out / "digits-cnn.int8.onnx"
    assert recorded_preprocessing(artifact).normalize == "none"
    assert recorded_preprocessing(out / "missing.onnx") is None
    with caplog.at_level(logging.WARNING, logger="edgepipe"):
        assert normalize_for(artifact, "builtin:digits", None) == "none"
        assert normalize_for(artifact, "data.npz", None) is None
        assert normalize_for(artifact, np.zeros((2, 64)), "unit") == "unit"
        assert not caplog.records
        assert normalize_for(artifact, "builtin:digits", "unit") == "unit"
        assert caplog.records


def test_split_records_it_on_the_head(tmp_path, cli):
    """The head takes the data, so its record keeps how the data was prepared (split run
    prepares its data from it); the tail takes codes, so its record has none."""
    from edgepipe.recorded import normalize_for

    out = tmp_path / "split"
    ran = cli("split", "builtin:digits-cnn", "--at", "pool2", "--bottleneck", "4", "--data",
              "builtin:digits", "--normalize", "none", "-o", out, "--distill-epochs", "1",
              "--finetune-epochs", "1", "-f", "onnx", "--json")
    assert ran.code == 0, ran
    manifest = RunDir(out).read_manifest()
    head, tail = manifest.artifact("head.onnx"), manifest.artifact("tail.onnx")
    assert head.preprocessing.normalize == "none" and head.preprocessing.layout == "NCHW"
    assert not tail.preprocessing
    assert normalize_for(out / "head.onnx", "builtin:digits", None) == "none"
