"""The recipe run's documents (report.json, the variants' manifests, the profiles, the
``--json`` result) validate against docs/schemas/, and the typed report reads back as
written and renders the same pages."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def _validate(name: str, document: object) -> None:
    schema = json.loads((SCHEMAS / f"{name}.v1.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)


def test_the_run_documents_validate(first_run):
    folder, result, _ = first_run
    out = folder / "out"
    _validate("report", json.loads((out / "report.json").read_text()))
    _validate("command-run", {"schema_version": 1, "command": "run", "ok": True,
                              "config": {}, "result": result})
    manifests = sorted(out.glob("variants/*/manifest.json"))
    profiles = sorted(out.glob("profiles/*.json"))
    # 3 artifacts x 3 targets, less the two ONNX files on the MCU (a format it cannot run:
    # not profiled, so no profile file)
    assert len(manifests) == 2 and len(profiles) == 7
    for path in manifests:
        _validate("manifest", json.loads(path.read_text()))
    for path in profiles:
        _validate("profile", json.loads(path.read_text()))


def test_the_typed_report_reads_back_as_written_and_renders_the_same(first_run):
    from edgepipe.pipeline.document import Report
    from edgepipe.pipeline.html import render_html
    from edgepipe.pipeline.report import markdown

    folder, _, _ = first_run
    out = folder / "out"
    saved = json.loads((out / "report.json").read_text())
    report = Report.from_dict(saved)
    assert report.variants[1].artifacts[0].cell("host").latency_label == "measured"
    assert report.recommendations["stm32f746"].fastest.format == "tflite"
    assert json.dumps(report.to_dict()) == json.dumps(saved)  # same keys, same order
    assert markdown(report) == (out / "report.md").read_text()
    assert render_html(report, out) == (out / "report.html").read_text()


def test_failed_variants_and_profiles_are_described_too(first_run):
    """A failed build (an edgepipe error, or an unexpected one with its traceback) and a
    failed profile, as run.py records them, read back unchanged and validate."""
    from edgepipe.pipeline.document import Report

    folder, _, _ = first_run
    saved = json.loads((folder / "out" / "report.json").read_text())
    def failed(name, error):  # the keys in the order run.py writes them
        return {"name": name, "method": "w4a8", "config": {}, "status": "failed",
                "error": error, "cached": False, "seconds": 0.5}

    saved["variants"] += [
        failed("w4", {"type": "InputError", "reference": "bad-input", "message": "no",
                      "hint": "do this"}),
        failed("crash", {"type": "ValueError", "message": "boom", "hint": None,
                         "traceback": "..."})]
    saved["variants"][0]["result"]["artifacts"][0]["targets"]["rpi5"] = {
        "status": "failed", "error": {"type": "TargetError", "reference": "ssh-failed",
                                      "message": "unreachable", "hint": None}}
    _validate("report", saved)
    report = Report.from_dict(saved)
    assert [v.ok for v in report.variants[-2:]] == [False, False]
    assert report.variants[-1].error.traceback == "..."
    assert json.dumps(report.to_dict()) == json.dumps(saved)
