"""Write docs/schemas/<name>.v<N>.schema.json, the JSON Schemas of the documents edgepipe
writes, from their typed classes (``--check``: fail if a committed schema is not what the
code gives now; tests/test_schemas.py runs it).

    python scripts/schemas.py

The classes are imported in the one block below (the registry): when a class moves, fix
its import here. A command whose result is not typed yet (profile, eval) is described by a
dataclass in this file that mirrors its JSON form; tests/test_schemas.py validates real
outputs against every schema, so a description that falls behind the code fails there.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# ---------------------------------------------------------------- the registry's imports
from edgepipe.analysis.summary import ModelSummary  # noqa: E402
from edgepipe.cli.common import SCHEMA_VERSION as COMMAND_VERSION  # noqa: E402
from edgepipe.cli.common import CommandOutput, ErrorOutput  # noqa: E402
from edgepipe.compress.api import CompressResult  # noqa: E402
from edgepipe.documents import Document, SchemaWriter, json_schema, optional_key  # noqa: E402
from edgepipe.evaluate import EvalResult  # noqa: E402
from edgepipe.export.api import ExportResult  # noqa: E402
from edgepipe.pipeline.document import Report  # noqa: E402
from edgepipe.profiling.profile import PROFILE_SCHEMA_VERSION  # noqa: E402
from edgepipe.rundir import ArtifactRecord, Manifest  # noqa: E402
from edgepipe.split.api import SplitResult  # noqa: E402
from edgepipe.split.plan import SplitPlan  # noqa: E402

OUT = ROOT / "docs" / "schemas"
Schema = dict[str, Any]


# ---------------------------------------------------------------- descriptions
# JSON forms that no class of edgepipe types yet: the profile document (``Profile`` wraps
# it as a plain mapping) and its blocks. Open (ADDITIONAL_KEYS) where a runner adds figures
# of its own (ssh, adb, benchmark_model, CUDA).


@dataclass(kw_only=True)
class Figure(Document):
    """A figure with its label: measured, estimated, unavailable (with why), and how."""

    ADDITIONAL_KEYS: ClassVar[bool] = True

    value: int | float | None
    label: str


@dataclass(kw_only=True)
class ProfileArtifact(Document):
    """The artifact profiled: its files and the runtime that ran it."""

    path: str
    runtime: str
    format: str
    precision: str | None
    files: list[str]
    size_bytes: Figure


@dataclass(kw_only=True)
class ProfileTarget(Document):
    """The target of the profile, as the catalog names it."""

    name: str
    title: str
    reach: str


@dataclass(kw_only=True)
class ProfileLatency(Document):
    """Latency: ``steady`` holds the steady-state figures (``p50_s`` at least)."""

    ADDITIONAL_KEYS: ClassVar[bool] = True

    label: str
    steady: dict[str, int | float | list[float] | None]


@dataclass(kw_only=True)
class ProfileMemory(Document):
    """Memory figures, each with its label."""

    ADDITIONAL_KEYS: ClassVar[bool] = True

    artifact_size_bytes: Figure


@dataclass(kw_only=True)
class ProfileEnergy(Document):
    """Energy per inference, or why there is none (``label``)."""

    ADDITIONAL_KEYS: ClassVar[bool] = True

    label: str


@dataclass(kw_only=True)
class ProfileDocument(Document):
    """A profile of one artifact on one target (``edgepipe profile --save`` and ``--json``'s
    result, ``OUT/profiles/*.json`` of a recipe run): measured here or on a device, or
    estimated, every figure labelled."""

    SCHEMA_NAME: ClassVar[str] = "profile"
    SCHEMA_VERSION: ClassVar[int] = PROFILE_SCHEMA_VERSION

    schema_version: int = PROFILE_SCHEMA_VERSION
    artifact: ProfileArtifact
    target: ProfileTarget
    settings: dict[str, Any]
    mode: Literal["measured", "estimated"]
    reason: str = optional_key(doc="why the figures are estimated")
    device: dict[str, Any] = optional_key(doc="how the device was reached (ssh, adb)")
    inputs: dict[str, Any] = optional_key()
    identity: dict[str, Any] = optional_key()
    runtime: dict[str, Any] = optional_key()
    device_state: dict[str, Any] | None = optional_key()
    latency: ProfileLatency
    layers: dict[str, Any] | None = optional_key()
    memory: ProfileMemory
    energy: ProfileEnergy


def _eval_result(writer: SchemaWriter) -> Schema:
    schema = writer.object(EvalResult)
    schema["properties"]["value"] = {"type": ["number", "null"]}
    schema["properties"]["identical"] = {"const": True}
    schema["description"] = ("eval's result: the EvalResult (value null and identical true "
                             "when the outputs equal the reference's) and the samples it ran on")
    return schema


# The loosely typed fields of the verbs' results, described by the class they hold.
FIELDS = {
    (ExportResult, "artifacts"): list[ArtifactRecord],
    (CompressResult, "artifacts"): list[ArtifactRecord],
    (CompressResult, "float_artifacts"): list[ArtifactRecord],
}


def _inspect_result(writer: SchemaWriter) -> Schema:
    schema = writer.object(ModelSummary)
    for key, what in (("data", "the split inspect would use (--data)"),
                      ("support", "per format, the converter's support of every op (--format)"),
                      ("patch_plan", "patch-based inference plans (--patch-plan)")):
        schema["properties"][key] = {"type": "object", "description": what}
    return schema


def _run_result(writer: SchemaWriter) -> Schema:
    schema = writer.object(Report)
    schema["properties"] = {
        "out": {"type": "string", "description": "the run directory"},
        "report": {"type": "object", "description": "where the report files are",
                   "properties": {k: {"type": "string"} for k in ("json", "html", "markdown")},
                   "required": ["json", "html", "markdown"], "additionalProperties": False},
        **schema["properties"]}
    schema["required"] = ["out", "report", *schema["required"]]
    return schema


def command(name: str, result: Any) -> Callable[[SchemaWriter], Schema]:
    """The ``--json`` document of ``edgepipe NAME``: the envelope with ``result`` (an
    annotation, or a callable building its schema) or an error."""

    def build(writer: SchemaWriter) -> Schema:
        schema = writer.object(CommandOutput)
        properties = schema["properties"]
        properties["schema_version"] = {"const": COMMAND_VERSION}
        properties["command"] = {"const": name}
        properties["result"] = result(writer) if inspect.isfunction(result) \
            else writer.of(result)
        properties["error"] = writer.of(ErrorOutput)
        schema["description"] = (f"`edgepipe {name} --json`: " + schema["description"][0].lower()
                                 + schema["description"][1:])
        schema["oneOf"] = [{"required": ["result"]},
                           {"required": ["error"], "properties": {"ok": {"const": False}}}]
        return schema

    return build


@dataclass(frozen=True)
class Entry:
    """One published schema: ``<name>.v<version>.schema.json``."""

    name: str
    version: int
    title: str
    cls: type
    what: str  # where the document is written, for the README
    root: Callable[[SchemaWriter], Schema] | None = None
    fields: dict[tuple[type, str], Any] = field(default_factory=dict)


REGISTRY = [
    Entry("manifest", Manifest.SCHEMA_VERSION, "edgepipe manifest.json", Manifest,
          "`OUT/manifest.json`: the artifacts of a run directory and the steps that made them "
          "(`Manifest` in `src/edgepipe/rundir.py`)"),
    Entry("report", Report.SCHEMA_VERSION, "edgepipe report.json", Report,
          "`OUT/report.json` of `edgepipe run` (`Report` in `src/edgepipe/pipeline/document.py`)"),
    Entry("profile", ProfileDocument.SCHEMA_VERSION, "edgepipe profile", ProfileDocument,
          "a profile: `edgepipe profile --save FILE`, `OUT/profiles/*.json` of `edgepipe run` "
          "(described by `ProfileDocument` in `scripts/schemas.py`)"),
    *[Entry(f"command-{name.replace(' ', '-')}", COMMAND_VERSION, f"edgepipe {name} --json",
            CommandOutput, f"`edgepipe {name} --json` (result: {what})", command(name, result),
            FIELDS) for name, result, what in (
        ("export", ExportResult, "`ExportResult`, `src/edgepipe/export/api.py`"),
        ("compress", CompressResult, "`CompressResult`, `src/edgepipe/compress/api.py`"),
        ("eval", _eval_result, "`EvalResult`, `src/edgepipe/evaluate.py`, with the samples "
         "it ran on in `data`"),
        ("profile", ProfileDocument, "the profile document"),
        ("inspect", _inspect_result, "`ModelSummary`, `src/edgepipe/analysis/summary.py`, "
         "with `data`, `support`, `patch_plan` when asked"),
        ("split", SplitResult, "`SplitResult`, `src/edgepipe/split/api.py`"),
        ("split plan", SplitPlan, "`SplitPlan`, `src/edgepipe/split/plan.py`"),
        ("run", _run_result, "the report, with `out` and the report files"),
    )],
]


def schema_of(entry: Entry) -> Schema:
    return json_schema(entry.cls, name=entry.name, version=entry.version, title=entry.title,
                       fields=entry.fields, root=entry.root)


def filename(entry: Entry) -> str:
    return f"{entry.name}.v{entry.version}.schema.json"


def render() -> dict[str, str]:
    """File name -> text of every schema, and of docs/schemas/README.md."""
    files = {filename(e): json.dumps(schema_of(e), indent=2, ensure_ascii=False) + "\n"
             for e in REGISTRY}
    files["README.md"] = readme()
    return files


def readme() -> str:
    rows = "\n".join(f"| [`{filename(e)}`]({filename(e)}) | {e.version} | {e.what} |"
                     for e in REGISTRY)
    return f"""# JSON Schemas of edgepipe's documents

<!-- Generated by `python scripts/schemas.py` from the typed documents; do not edit. -->

Every JSON document edgepipe writes has a published schema (JSON Schema draft 2020-12),
generated from the class that writes it. Each document carries its version
(`"schema_version"`); a schema's file name says which version it describes.

| schema | version | document |
|---|---|---|
{rows}

The `--json` documents of every command share one envelope (`schema_version`, `command`,
`ok`, `config`, and `result` or `error`); a `command-NAME` schema describes the envelope
with that command's result.

## How versions change

- A change that a reader of the previous version would misread (a key removed, renamed or
  given another meaning or type) bumps the document's version: `MANIFEST_SCHEMA` in
  `src/edgepipe/rundir.py`, `REPORT_SCHEMA_VERSION` in `src/edgepipe/pipeline/document.py`,
  `PROFILE_SCHEMA_VERSION` in `src/edgepipe/profiling/profile.py`, `SCHEMA_VERSION` in
  `src/edgepipe/cli/common.py` (the `--json` envelope). The new schema is written beside the
  old one, which stays published for the files already written.
- A new optional key keeps the version: readers of the version ignore keys they do not know,
  and edgepipe reads older files (their missing keys take defaults), keeping keys it does not
  know when it rewrites a file (`Document.from_dict` in `src/edgepipe/documents.py`).
- edgepipe refuses a manifest of a newer version than it knows (`manifest-too-new`).

After changing a document class, run `python scripts/schemas.py`; `tests/test_schemas.py`
fails while a schema here is stale, and validates real outputs (export, compress, eval,
profile, a recipe run) against these schemas.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a schema is not current")
    args = parser.parse_args()
    files = render()
    if args.check:
        stale = [name for name, text in files.items()
                 if not (OUT / name).is_file() or (OUT / name).read_text() != text]
        known = {p.name for p in OUT.glob("*.schema.json")} if OUT.is_dir() else set()
        current = {name for name in files if name.endswith(".schema.json")}
        retired = sorted(known - current)  # older versions stay published: not stale
        if stale:
            print("docs/schemas/ is not current (" + ", ".join(stale)
                  + "): run python scripts/schemas.py", file=sys.stderr)
            return 1
        if retired:
            print("older versions kept: " + ", ".join(retired), file=sys.stderr)
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (OUT / name).write_text(text)
    print(f"wrote {len(files)} files in docs/schemas/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
