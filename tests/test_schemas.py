"""The JSON Schemas of docs/schemas/ are what the typed documents give now, and real outputs
(``--json`` of export, compress, eval, profile, inspect; manifest.json; a saved profile)
validate against them. The recipe run's report.json is checked in
tests/pipeline/test_report_schema.py, on the run those tests share."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import pytest

from edgepipe.documents import ABSENT, Document, json_schema, optional_key
from edgepipe.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "docs" / "schemas"


def validate(name: str, document: Any) -> None:
    """Raise unless ``document`` is valid under ``docs/schemas/<name>.v1.schema.json``."""
    schema = json.loads((SCHEMAS / f"{name}.v1.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)


def test_the_schemas_are_current():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "schemas.py"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_every_schema_is_a_valid_json_schema_and_listed_in_the_readme():
    readme = (SCHEMAS / "README.md").read_text()
    files = sorted(SCHEMAS.glob("*.schema.json"))
    assert {f.name.split(".v")[0] for f in files} >= {
        "manifest", "report", "profile", "command-export", "command-compress", "command-eval",
        "command-profile", "command-run", "command-inspect"}
    for path in files:
        schema = json.loads(path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$id"] == path.name and f"[`{path.name}`]" in readme


# ------------------------------------------------------------------ the document base


@dataclass(kw_only=True)
class _Inner(Document):
    """An inner row."""

    label: str
    value: float | None = None


@dataclass(kw_only=True)
class _Outer(Document):
    """A small document."""

    SCHEMA_NAME: ClassVar[str] = "outer"
    SCHEMA_VERSION: ClassVar[int] = 3

    schema_version: int = 3
    name: str
    rows: list[_Inner] = field(default_factory=list)
    where: Path | None = None
    note: str = optional_key()


def test_a_document_reads_back_what_it_wrote_and_leaves_out_absent_keys():
    document = _Outer(name="a", rows=[_Inner(label="x", value=1.5)], where=Path("/o"))
    written = document.to_dict()
    assert written == {"schema_version": 3, "name": "a", "rows": [{"label": "x", "value": 1.5}],
                       "where": "/o"}
    assert "note" not in written and document.note is ABSENT
    assert _Outer.from_dict(written) == document
    document.note = "set"
    assert document.to_dict()["note"] == "set"


def test_from_dict_is_tolerant_of_older_and_newer_files():
    older = _Outer.from_dict({"name": "a"})  # keys it lacks take their defaults
    assert older.rows == [] and older.schema_version == 3
    newer = {"name": "a", "rows": [{"label": "x", "value": None, "colour": "red"}],
             "added_later": {"k": 1}}
    read = _Outer.from_dict(newer)
    assert read.rows[0].label == "x"
    back = read.to_dict()  # unknown keys are kept when the document is written again
    assert back["added_later"] == {"k": 1} and back["rows"][0]["colour"] == "red"


def test_from_dict_refuses_a_document_without_its_required_keys():
    with pytest.raises(InputError, match="'name' is missing") as info:
        _Outer.from_dict({"rows": []}, where="outer.json")
    assert info.value.reference == "document-invalid" and info.value.hint
    with pytest.raises(InputError, match="expected a list"):
        _Outer.from_dict({"name": "a", "rows": {"label": "x"}})


def test_the_schema_describes_the_json_form():
    schema = json_schema(_Outer, name="outer", version=3, title="outer")
    assert schema["$id"] == "outer.v3.schema.json"
    assert schema["properties"]["schema_version"] == {"const": 3}
    assert schema["properties"]["where"] == {"type": ["string", "null"]}
    assert schema["properties"]["rows"]["items"] == {"$ref": "#/$defs/_Inner"}
    assert "note" not in schema["required"] and "rows" in schema["required"]
    assert schema["$defs"]["_Inner"]["description"] == "An inner row."
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(_Outer(name="a", rows=[_Inner(label="x")]).to_dict())
    assert not validator.is_valid({"schema_version": 3, "name": "a", "rows": [], "where": None,
                                   "typo": 1})
    assert not validator.is_valid({"schema_version": 2, "name": "a", "rows": [], "where": None})


# ------------------------------------------------------------------ real outputs


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def _cli(*args: object) -> Ran:
    from edgepipe.cli import common
    from edgepipe.cli.main import run

    out, err = io.StringIO(), io.StringIO()
    common.state.__init__()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run([str(a) for a in args])
    return Ran(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """export, compress int8, profile (saved), eval and inspect of the digits CNN, each
    with --json; the folder they wrote in."""
    folder = tmp_path_factory.mktemp("schemas")
    ran = {
        "export": _cli("export", "builtin:digits-cnn", "-f", "onnx", "-o", folder / "float",
                       "--json"),
        "compress": _cli("compress", "builtin:digits-cnn", "--method", "int8", "-f", "onnx",
                         "--data", "builtin:digits", "--calib-size", "64", "-o",
                         folder / "int8", "--json"),
    }
    artifact = folder / "int8" / "digits-cnn.int8.onnx"
    ran["profile"] = _cli("profile", artifact, "--target", "host", "--runs", "5",
                          "--duration", "0.05", "--warmup", "2", "--save",
                          folder / "profile.json", "--json")
    ran["eval"] = _cli("eval", artifact, "--data", "builtin:digits", "--json")
    ran["inspect"] = _cli("inspect", "builtin:digits-cnn", "--json")
    for name, result in ran.items():
        assert result.code == 0, (name, result)
    return folder, ran


@pytest.mark.parametrize("command", ["export", "compress", "profile", "eval", "inspect"])
def test_the_json_of_each_command_validates(outputs, command):
    _, ran = outputs
    document = ran[command].json()
    assert document["command"] == command and document["ok"] is True
    validate(f"command-{command}", document)


def test_split_and_its_plan_validate(tmp_path):
    """A short split (one epoch each) and the plan of its cut: both --json documents and the
    split's manifest."""
    out = tmp_path / "split"
    made = _cli("split", "builtin:digits-cnn", "--at", "pool2", "--bottleneck", "4", "--data",
                "builtin:digits", "-o", out, "--distill-epochs", "1", "--finetune-epochs", "1",
                "--json")
    assert made.code == 0, made
    validate("command-split", made.json())
    validate("manifest", json.loads((out / "manifest.json").read_text()))
    planned = _cli("split", "plan", "builtin:digits-cnn", "--device", "rpi5", "--bandwidth",
                   "10Mbps", "--split", out, "--data", "builtin:digits", "--json")
    assert planned.code == 0, planned
    document = planned.json()
    assert document["command"] == "split plan" and document["result"]["options"]
    validate("command-split-plan", document)


def test_the_manifests_and_the_saved_profile_validate(outputs):
    folder, ran = outputs
    for out in ("float", "int8"):
        manifest = json.loads((folder / out / "manifest.json").read_text())
        assert manifest["artifacts"] and manifest["steps"]
        validate("manifest", manifest)
    saved = json.loads((folder / "profile.json").read_text())
    assert saved["mode"] == "measured" and saved == ran["profile"].json()["result"]
    validate("profile", saved)


def test_a_schema_refuses_what_edgepipe_would_not_write(outputs):
    folder, ran = outputs
    manifest = json.loads((folder / "float" / "manifest.json").read_text())
    del manifest["artifacts"][0]["sha256"]
    with pytest.raises(jsonschema.ValidationError, match="sha256"):
        validate("manifest", manifest)
    document = ran["export"].json()
    document["command"] = "compress"
    with pytest.raises(jsonschema.ValidationError):
        validate("command-export", document)


def test_an_error_document_validates_with_ok_false(outputs, tmp_path):
    failed = _cli("export", tmp_path / "missing.onnx", "-o", tmp_path / "out", "--json")
    assert failed.code != 0
    document = failed.json()
    assert document["ok"] is False and document["error"]["reference"] == "model-not-found"
    validate("command-export", document)
    document["ok"] = True  # an error with ok true is not a document edgepipe writes
    with pytest.raises(jsonschema.ValidationError):
        validate("command-export", document)
