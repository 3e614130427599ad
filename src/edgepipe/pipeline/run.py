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

import errno
import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgepipe import __version__, formats
from edgepipe.data.preprocessing import Preprocessing
from edgepipe.errors import EdgepipeError, first_line
from edgepipe.json_types import JsonObject
from edgepipe.pipeline.document import Report
from edgepipe.pipeline.recipe import Recipe, TargetSpec, Variant
from edgepipe.pipeline.steps import StepCache, building, digest, source_identity
from edgepipe.progress import ProgressCallback, report, reporting


@dataclass(frozen=True)
class StepEvent:
    """A step starting or ending, for progress displays: the step's key, kind and label; at
    the end its status, its result or error (their JSON forms, as cached), whether the cache
    answered and how long it took."""

    event: Literal["start", "end"]
    step: str
    kind: str
    label: str
    status: str | None = None
    result: JsonObject | None = None
    error: JsonObject | None = None
    cached: bool = False
    seconds: float = 0.0


Events = Callable[[StepEvent], None]


@dataclass
class Context:
    recipe: Recipe
    out: Path
    cache: StepCache
    events: Events
    total: int = 0  # variants, for progress
    done: int = 0
    _loaded: Any = None
    _splits: Any = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    def loaded(self) -> Any:
        if self._loaded is None:
            from edgepipe.model import load_model
            from edgepipe.tensors import parse_shape

            spec = self.recipe.model
            self._loaded = load_model(
                spec.spec, weights=spec.weights, model_args=spec.args or None,
                input_shape=parse_shape(spec.input_shape) if spec.input_shape else None)
        return self._loaded

    def splits(self) -> Any:
        if self._splits is None:
            from edgepipe.data import splits_for
            from edgepipe.model import classifier_classes

            data = self.recipe.data
            self._splits = splits_for(data.spec, self.loaded().inputs,
                                      num_classes=classifier_classes(self.loaded()),
                                      seed=data.seed, normalize=data.normalize,
                                      tokenizer=self.loaded().tokenizer_folder)
        return self._splits


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
        built = _step(context, f"variant.{variant.name}", "build", variant.name,
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
                    artifact["targets"][target.name] = _profile_step(context, variant,
                                                                     artifact, target)
            if variant.method == "split":
                entry["plans"] = {target.name: _plan_step(context, variant, built["result"],
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


def _step(context: Context, key: str, kind: str, label: str, config: dict[str, Any],
          work: Callable[[], dict[str, Any]], outputs: list[str]) -> dict[str, Any]:
    step_digest = digest({"kind": kind, "config": config, "edgepipe": __version__})
    cached = context.cache.get(key, step_digest)
    started = time.perf_counter()
    context.events(StepEvent("start", key, kind, label))
    report("recipe", context.done, context.total, f"{kind} {label}")
    if cached is not None:
        record = {"status": "ok", "result": cached, "cached": True, "seconds": 0.0}
    else:
        try:
            result = work()
            context.cache.put(key, step_digest, result, outputs)
            record = {"status": "ok", "result": result, "cached": False,
                      "seconds": round(time.perf_counter() - started, 2)}
        except Exception as exc:  # one failed step is reported; the run goes on
            context.cache.forget(key)
            error = ({"type": type(exc).__name__, "reference": exc.reference,
                      "message": exc.message, "hint": exc.hint}
                     if isinstance(exc, EdgepipeError) else
                     {"type": type(exc).__name__, "message": first_line(exc),
                      "hint": _hint(exc), "traceback": traceback.format_exc(limit=6)})
            record = {"status": "failed", "error": error, "cached": False,
                      "seconds": round(time.perf_counter() - started, 2)}
    context.steps.append({"step": key, "kind": kind, "status": record["status"],
                          "cached": record["cached"], "seconds": record["seconds"],
                          "digest": step_digest})
    context.events(StepEvent("end", key, kind, label, record["status"], record.get("result"),
                             record.get("error"), record["cached"], record["seconds"]))
    return record


def _hint(exc: BaseException) -> str | None:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "the disk is full: free some space and run again; finished steps are kept"
    return None


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


def _profile_step(context: Context, variant: Variant, artifact: dict[str, Any],
                  target: TargetSpec) -> dict[str, Any]:
    settings = context.recipe.profile
    relative = f"profiles/{variant.name}.{artifact['format']}.{artifact['role']}.{target.name}.json"
    refused = _refusal(artifact, target)  # a format the target cannot run: no profile file
    record = _step(context, f"profile.{variant.name}.{artifact['format']}.{artifact['role']}."
                   f"{target.name}", "profile",
                   f"{variant.name} {artifact['format']} on {target.name}",
                   {"artifact": artifact["sha256"], "target": target.model_dump(),
                    "settings": settings.model_dump()},
                   (lambda: _not_run(refused)) if refused else
                   (lambda: _profile(context, artifact, target, relative)),
                   [] if refused else [relative])
    if record["status"] != "ok":
        return {"status": "failed", "error": record["error"]}
    return {"status": "ok", "cached": record["cached"], **record["result"]}


def _refusal(artifact: dict[str, Any], target: TargetSpec) -> EdgepipeError | None:
    """Why ``target`` cannot run the artifact's format, where it would be estimated (no
    host, not this machine): the estimator refuses such a pair (``format-not-on-target``)."""
    from edgepipe.devices.catalog import get_target
    from edgepipe.devices.runtimes import check_runs_there

    try:
        entry = get_target(target.name)
    except EdgepipeError:
        return None  # the profile step reports it
    if target.remote is not None or entry.reach == "local":
        return None
    try:
        check_runs_there(entry, formats.get(artifact["format"]).runtime,
                         Path(artifact["path"]).name)
    except EdgepipeError as exc:
        return exc
    return None


def _not_run(refused: EdgepipeError) -> dict[str, Any]:
    """A pair the target cannot run: no estimate, and it does not fit, with the reason."""
    return {"mode": "not-run", "latency_s": None, "latency_label": "unavailable",
            "fit": {"fits": False, "label": "measured", "reason": refused.message}}


def _profile(context: Context, artifact: dict[str, Any], target: TargetSpec,
             relative: str) -> dict[str, Any]:
    from edgepipe.profiling.profile import profile
    from edgepipe.profiling.runner import LatencySettings
    from edgepipe.profiling.target import resolve_target
    from edgepipe.rundir import atomic_write_json

    settings = context.recipe.profile
    latency = LatencySettings(runs=settings.runs, duration_s=settings.duration,
                              warmup_runs=settings.warmup, warmup_s=0.2,
                              threads=settings.threads, per_layer=settings.per_layer,
                              energy=settings.energy, energy_idle_s=1.0, energy_busy_s=1.0)
    resolved = resolve_target(target.name, device=target.remote)
    path = context.out / artifact["path"]
    document = profile(path, resolved, latency, data=context.recipe.data.spec,
                       normalize=context.recipe.data.normalize).to_dict()
    (context.out / relative).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(context.out / relative, document)
    found = resolved.entry
    summary = summarize_profile(document)
    if not summary["layers"]:
        summary.update(_estimated_layers(path, found, document))
    summary["fit"] = _fit(path, artifact, found, document)
    summary["profile"] = relative
    return summary


def summarize_profile(document: dict[str, Any]) -> dict[str, Any]:
    """The figures the report needs from a Profile document, with their labels."""
    latency = document.get("latency") or {}
    energy = document.get("energy") or {}
    memory = document.get("memory") or {}
    joules = energy.get("joules_per_inference")
    if isinstance(joules, dict):
        joules = joules.get("value")
    peak_rss = memory.get("peak_rss_bytes")
    peak_activation = memory.get("peak_activation_bytes") or {}
    layers = document.get("layers") or {}
    top = [{"name": row.get("name"), "op": row.get("op_type"), "seconds": row["mean_us"] / 1e6}
           for row in layers.get("rows") or [] if row.get("mean_us") is not None]
    top.sort(key=lambda r: -r["seconds"])
    return {
        "mode": document.get("mode"),
        "latency_s": (latency.get("steady") or {}).get("p50_s"),
        "latency_label": latency.get("label"),
        "latency_model": latency.get("model"),
        "latency_bound": latency.get("bound"),  # "lower": the latency is at least this
        "energy_j": joules, "energy_label": energy.get("label"),
        "energy_how": energy.get("sensor") or energy.get("model") or energy.get("why"),
        "size_bytes": memory.get("artifact_size_bytes"),
        "peak_rss_bytes": peak_rss.get("value") if isinstance(peak_rss, dict) else peak_rss,
        "peak_activation_bytes": peak_activation.get("value"),
        "layers": top[:15], "layers_label": "measured" if top else None,
        "layers_note": None if top else (layers.get("note") or (
            "per-layer times are measured on a reached device only")),
    }


def _estimated_layers(path: Path, target: Any, document: dict[str, Any]) -> dict[str, Any]:
    """The estimator's per-layer times where the runtime gave none (a device not reached,
    or LiteRT's interpreter, which has no per-op timer), labelled so."""
    from edgepipe.devices.estimator import per_layer_seconds
    from edgepipe.profiling.graph import summary_for

    graph, source = summary_for(path)
    if graph is None:
        return {}
    precision = (document.get("artifact") or {}).get("precision") or "fp32"
    try:
        seconds = per_layer_seconds(graph, target, precision)
    except EdgepipeError:
        return {}
    rows = sorted(({"name": layer.name, "op": layer.op_type, "seconds": float(value)}
                   for layer, value in zip(graph.layers, seconds, strict=True)),
                  key=lambda r: -r["seconds"])
    return {"layers": rows[:15], "layers_label": "estimated",
            "layers_note": f"the estimator's per-layer times ({source})"}


def _fit(path: Path, artifact: dict[str, Any], target: Any,
         document: dict[str, Any]) -> dict[str, Any]:
    """Whether the artifact fits the device: TFLite Micro's own check on a microcontroller,
    the artifact and its activations against the device's RAM elsewhere."""
    if target.kind == "mcu":
        if artifact["format"] != "tflite":
            return {"fits": False, "label": "measured",
                    "reason": "a microcontroller runs .tflite files (TFLite Micro)"}
        from edgepipe.devices.fit import check_fit

        checked = check_fit(path, target)
        return {"fits": checked.fits, "label": "measured",
                "reason": "; ".join(checked.reasons) or (
                    f"flash {checked.flash.need_bytes:,} B, SRAM "
                    f"{checked.sram.need_bytes:,} B (TFLite Micro arena measured)")}
    ram = target.memory.ram_bytes.value if target.memory and target.memory.ram_bytes else None
    memory = document.get("memory") or {}
    activation = (memory.get("peak_activation_bytes") or {}).get("value") or 0
    need = int(artifact["size_bytes"]) + int(activation)
    if ram is None:
        return {"fits": True, "label": "estimated", "reason": "no RAM figure for the device"}
    return {"fits": need <= ram, "label": "estimated",
            "reason": f"{need:,} B of weights and activations against {int(ram):,} B of RAM"}


def _plan_step(context: Context, variant: Variant, built: dict[str, Any], target: TargetSpec,
               sources: dict[str, Any]) -> dict[str, Any]:
    """``split plan`` for the split variant with ``target`` as the device: every option's
    head, bytes, transfer and tail at the variant's link, and the sweep over bandwidths."""
    server = variant.server or "host"
    record = _step(context, f"plan.{variant.name}.{target.name}", "plan",
                   f"{variant.name}: {target.name} -> {server}",
                   {"artifacts": sorted(a["sha256"] for a in built["artifacts"]),
                    "target": target.model_dump(), "server": server, "link": variant.link,
                    "at": variant.at, "sources": sources},
                   lambda: _plan(context, variant, built, target, server), [])
    if record["status"] != "ok":
        return {"status": "failed", "error": record["error"]}
    return {"status": "ok", "cached": record["cached"], **record["result"]}


def _plan(context: Context, variant: Variant, built: dict[str, Any], target: TargetSpec,
          server_name: str) -> dict[str, Any]:
    from edgepipe.devices.catalog import get_target
    from edgepipe.split.plan import Link, parse_duration, parse_rate, plan_model

    loaded = context.loaded()
    device, server = get_target(target.name), get_target(server_name)
    result = plan_model(
        loaded, device, server, Link(parse_rate(variant.link[0]), parse_duration(variant.link[1])),
        cuts=[variant.at or ""], split_dir=context.out / built["folder"],
        data=context.splits(), measure_split=True,
        device_reachable=target.name == "host" and target.remote is None,
        server_reachable=server.reach == "local")
    sources = {source for option in result.options
               for source in option["sources"].values() if source != "none"}
    label = " and ".join(sorted(sources)) or result.label  # e.g. "estimated and measured"
    return {"device": result.device, "server": result.server, "link": result.link,
            "label": label, "options": result.options, "pareto": result.pareto,
            "sweep": result.sweep, "models": result.models}
