"""``edgepipe run RECIPE -o OUT``: every variant built and measured, every artifact profiled on
every target, then the report.

Layout of OUT::

    variants/NAME/       what the variant's step wrote (artifacts and their manifest.json)
    profiles/NAME.FMT.TARGET.json   the Profile document of one artifact on one target
    .cache/              one record per step: the digest it ran with, its result
    report.json  report.md  report.html

A variant whose step fails is reported as failed with its error; the others go on. The
model and the data are loaded only when a step has to run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgepipe import formats
from edgepipe.data.preprocessing import Preprocessing
from edgepipe.errors import EdgepipeError
from edgepipe.pipeline.context import Context, Events, run_step
from edgepipe.pipeline.document import Report
from edgepipe.pipeline.measure import plan_step, profile_step
from edgepipe.pipeline.recipe import Recipe, Variant
from edgepipe.pipeline.steps import StepCache, building, source_identity
from edgepipe.progress import ProgressCallback, report, reporting


def _recorded_preprocessing(out: Path, recipe: Recipe) -> Preprocessing | None:
    """How the data was prepared, as the first variant's artifacts that say it record it
    (read from the manifests, so a run whose steps were all reused loads no data)."""
    from edgepipe.rundir import MANIFEST, Manifest

    for variant in recipe.variants:
        manifest = out / "variants" / variant.name / MANIFEST
        try:
            document = Manifest.from_dict(json.loads(manifest.read_text()), where=str(manifest))
        except (OSError, ValueError, EdgepipeError):
            continue  # a failed variant has no manifest: the next one may
        for record in document.artifacts:
            if record.preprocessing:
                return record.preprocessing
    return None


def run_recipe(recipe: Recipe, out: str | Path, *, events: Events = lambda _: None,
               recipe_path: str | None = None,
               progress: ProgressCallback | None = None) -> Report:
    """Run every step (cached ones are reused) and write the report; the report document.
    The recipe's ``catalog:`` (its own targets) is the user catalog throughout.

    ``progress``: a callback that receives the variants done (``recipe``, with the step
    running) and what the steps themselves report (:mod:`edgepipe.progress`)."""
    from edgepipe.devices.catalog import using

    with reporting(progress), using(recipe.catalog):
        return _run_recipe(recipe, Path(out), events, recipe_path)


def _run_recipe(recipe: Recipe, out: Path, events: Events, recipe_path: str | None) -> Report:
    from edgepipe.pipeline.report import build_report, write_report

    out.mkdir(parents=True, exist_ok=True)
    context = Context(recipe, out, StepCache(out), events, total=len(recipe.variants))
    sources = {"model": source_identity(recipe.model.spec),
               "weights": source_identity(recipe.model.weights),
               "data": source_identity(recipe.data.spec)}
    variants = []
    for done, variant in enumerate(recipe.variants):
        context.done = done
        built = run_step(context, f"variant.{variant.name}", "build", variant.name,
                      {"variant": variant.model_dump(), "model": recipe.model.model_dump(),
                       "data": recipe.data.model_dump(), "sources": sources},
                      lambda v=variant: _build(context, v), [f"variants/{variant.name}"])
        entry = {"name": variant.name, "method": variant.method,
                 "config": variant.model_dump(), **built}
        if built["status"] == "ok":
            for artifact in built["result"]["artifacts"]:
                if artifact["role"] == "tail":
                    continue  # the tail runs on the server: in the split's plan below
                artifact["targets"] = {}
                for target in recipe.targets:
                    artifact["targets"][target.name] = profile_step(context, variant,
                                                                     artifact, target)
            if variant.method == "split":
                entry["plans"] = {target.name: plan_step(context, variant, built["result"],
                                                          target, sources)
                                  for target in recipe.targets}
        variants.append(entry)
    report("recipe", len(recipe.variants), len(recipe.variants), "report")
    document = build_report(recipe, variants, context.steps, recipe_path=recipe_path,
                            preprocessing=_recorded_preprocessing(out, recipe))
    try:
        write_report(document, out)
    except OSError as exc:  # a full disk, most often: the previous report stays whole
        raise EdgepipeError(
            f"Cannot write the report in {out}: {exc.strerror or exc}.",
            hint="free some space (or give another -o) and run again: the steps that "
                 "finished are kept and will not run twice.",
            reference="cannot-write-report") from exc
    return document


def _build(context: Context, variant: Variant) -> dict[str, Any]:
    destination = context.out / "variants" / variant.name
    failed: list[dict[str, Any]] = []  # formats that failed while others were made
    with building(destination) as staging:
        if variant.method == "float":
            artifacts = _float(context, variant, staging, failed)
        elif variant.method == "split":
            artifacts = _split(context, variant, staging, failed)
        else:
            artifacts = _compress(context, variant, staging, failed)
    for artifact in artifacts:
        artifact["path"] = f"variants/{variant.name}/{artifact['path']}"
    return {"artifacts": artifacts, "folder": f"variants/{variant.name}",
            "failed_formats": failed}


def _made(make: Callable[[], Any], failed: list[dict[str, Any]], reason: str) -> Any:
    """What a verb made: its result, or what it made before some formats failed (those
    added to ``failed`` with the first line of their ``reason``)."""
    try:
        result = make()
    except EdgepipeError as exc:
        result = _partly(exc)
    failed += [{"format": _field(f, "format"), "message": _field(f, reason).splitlines()[0]}
               for f in result.failed]
    return result


def _field(failure: Any, name: str) -> str:
    """A failed format's ``name``: a key of export's records, an attribute of compress's."""
    return str(failure[name] if isinstance(failure, dict) else getattr(failure, name))


def _partly(exc: EdgepipeError) -> Any:
    """What a command that failed for some formats made (its result), or ``exc`` raised again
    when it made nothing (or the disk is full)."""
    from edgepipe.errors import disk_full

    made = getattr(exc, "result", None)
    if made is None or not made.artifacts or disk_full(exc):
        raise exc
    return made


def _accuracy(evaluation: dict[str, Any]) -> dict[str, Any]:
    return {"metric": evaluation["metric"], "value": evaluation["value"],
            "samples": evaluation["samples"], "runtime": evaluation["runtime"],
            "label": "measured", "on": "the artifact, in its runtime, on the eval split"}


def _entry(record: dict[str, Any], role: str, accuracy: dict[str, Any] | None) -> dict[str, Any]:
    return {"name": record["name"], "path": record["path"], "format": record["format"],
            "precision": record["precision"], "size_bytes": record["size_bytes"],
            "sha256": record["sha256"], "role": role, "accuracy": accuracy}


def _float(context: Context, variant: Variant, staging: Path,
           failed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from edgepipe.evaluate import evaluate_on_data
    from edgepipe.export.api import export_model
    from edgepipe.export.config import ExportConfig

    result = _made(lambda: export_model(context.loaded(), staging, ExportConfig(
        formats=tuple(variant.formats), threads=context.recipe.profile.threads)),
        failed, "reason")
    entries = []
    for record in result.artifacts:
        evaluation = evaluate_on_data(staging / record["path"], context.splits(),
                                      threads=context.recipe.profile.threads).to_dict()
        entries.append(_entry(record, "model", _accuracy(evaluation)))
    return entries


def _failed_export(failed: list[dict[str, Any]]) -> EdgepipeError:
    from edgepipe.errors import ModelError

    return ModelError("Export failed: " + "; ".join(
        f"{f.get('format')}: {f.get('error', {}).get('message', f.get('error'))}"
        for f in failed), hint="run `edgepipe export` on the model for the details.",
        reference="export-failed")


def _compress(context: Context, variant: Variant, staging: Path,
              failed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from edgepipe.compress import compress, make_config

    config = make_config(variant.method, formats=tuple(variant.formats), **variant.options)
    result = _made(lambda: compress(context.loaded(), config, staging, context.splits(),
                                    threads=context.recipe.profile.threads), failed, "message")
    entries = []
    for record in result.to_dict()["artifacts"]:  # _entry reads the manifest's record
        metrics = record["metrics"]
        accuracy = _accuracy(metrics["eval"]) if metrics.get("eval") else None
        entry = _entry(record, "model", accuracy)
        entry["float_accuracy"] = metrics.get("float_value")
        entries.append(entry)
    return entries


def _split(context: Context, variant: Variant, staging: Path,
           failed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from edgepipe.split.api import SplitConfig, split_model
    from edgepipe.split.train import SplitTraining

    data = context.recipe.data
    config = SplitConfig(at=variant.at or "", bottleneck=variant.bottleneck or 1,
                         bits=variant.bits, formats=tuple(variant.formats),
                         entropy=variant.entropy, rate_weight=variant.rate_weight,
                         target_bytes=variant.target_bytes,
                         training=SplitTraining.from_options({"seed": data.seed, **variant.options}))
    result = split_model(context.loaded(), config, context.splits(), staging,
                         normalize=data.normalize)
    broken = {f["format"] for f in result.failed}  # a head without its tail is no use
    artifacts = result.artifacts
    if broken:
        artifacts = [r for r in artifacts if r["format"] not in broken]
        if not artifacts:
            raise _failed_export(result.failed)
        failed += [{"format": f["format"], "message": str(f.get("reason") or f.get("error"))}
                   for f in result.failed]
    accuracy = result.accuracy
    if result.entropy is not None:  # what crosses is the bitstream, not the packed codes
        coding, sent = "entropy", f"{variant.bits}-bit codes -> range-coded bitstream"
        sent_bytes = result.bytes_per_sample["bitstream_bytes_mean"]
    else:
        coding, sent = "packed", f"{variant.bits}-bit codes"
        sent_bytes = result.bytes_per_sample["packed_bytes"]
    entries = []
    for record in artifacts:
        role = "head" if record["name"].startswith("head") else "tail"
        runtime = formats.get(record["format"]).runtime
        value = accuracy.get(f"split_{runtime}")
        entry = _entry(record, role, None if value is None else {
            "metric": "top1", "value": value, "samples": accuracy["samples"],
            "runtime": runtime, "label": "measured",
            "on": f"head -> {sent} -> tail, both artifacts in their runtime, eval split"})
        entry["float_accuracy"] = accuracy["original"]
        entry["split"] = {"at": variant.at, "bottleneck": variant.bottleneck,
                          "bytes_per_sample": sent_bytes, "coding": coding,
                          "input_bytes": result.bytes_per_sample["input_uint8"]}
        entries.append(entry)
    return entries


