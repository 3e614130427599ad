"""``compress``: one verb that applies any compression config, for every format it names.

For each format: the float model is exported and parity-checked by the export layer (into
a staging folder in OUT); the backend of (config type, format) writes the compressed
artifact beside it; both are run in their runtime on the eval split (or, without data, on
seeded random inputs) and scored against the source model; then both are moved into OUT
and recorded in ``manifest.json`` with the metric, the drop against the float artifact
(same run, same samples), and the calibration that was used. Nothing is published until
every format has been tried; a format that fails does not sink the others: their artifacts
are published and the error (exit status PARTIAL_EXIT) names each failed format and why.
A single format's failure raises its own error and leaves OUT as it was.

The verb owns its whole job: it loads the model (a spec) and the data (a DATA spec, a
Dataset or ready Splits), splits the data (calibration from train, the metric on eval),
checks the labels against the model's classes before any work, and records its own step in
the manifest; the CLI and the Python API only build the config and render the result.

compress/ computes; the files are written by the export layer, by the backends into the
staging folder they are handed (the quantizers work file to file), and by RunDir.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import importlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe import formats
from edgepipe.compress.base import Compressed, CompressJob
from edgepipe.compress.budget import AccuracyBudget, BudgetOutcome, tune
from edgepipe.compress.checkpoint import discard, kept_hint
from edgepipe.compress.checkpoint import folder as checkpoint_folder
from edgepipe.compress.config import METHODS, CompressConfig
from edgepipe.compress.results import (
    ArtifactMetrics,
    CalibrationUsed,
    CheckData,
    CompressedArtifact,
    CompressResult,
    FailedFormat,
    LeftInFloat,
    ToolRecord,
    eval_summary,
)
from edgepipe.compress.samples import (
    calibration_arrays,
    check_labels_fit,
    make_check_set,
    reference_outputs,
)
from edgepipe.compress.sensitivity import SensitivityTable, in_words
from edgepipe.data import Dataset, Splits, as_dataset, check_data_fits, split
from edgepipe.errors import (
    PARTIAL_EXIT,
    EdgepipeError,
    InputError,
    ToleranceError,
    UnsupportedError,
    backend_missing,
    disk_full,
    first_line,
)
from edgepipe.evaluate import EvalResult, evaluate_session, predict, score
from edgepipe.export import DEFAULT_ATOL, ExportConfig, compare_outputs, export_model
from edgepipe.export.base import log
from edgepipe.model import LoadedModel, file_sha256, load_model
from edgepipe.progress import ProgressCallback, report, reporting
from edgepipe.rundir import (
    ArtifactRecord,
    ManifestStep,
    RunDir,
    atomic_write_json,
    removed_if_left_empty,
)

# (config type, format) -> the backend module that does it (imported only when used): a view
# of each config class's ``backends``, the one place a method's formats are listed.
BACKENDS: dict[tuple[type[CompressConfig], str], str] = {
    (cls, fmt): backend for cls in dict.fromkeys(METHODS.values())
    for fmt, backend in cls.backends.items()}

ModelSource = LoadedModel | str | Callable[[], LoadedModel]
DataSource = Splits | Dataset | str | Path | None


def compress(
    model: ModelSource,
    config: CompressConfig,
    out: str | Path,
    data: DataSource = None,
    *,
    threads: int | None = None,
    budget: AccuracyBudget | None = None,
    normalize: str | None = None,
    progress: ProgressCallback | None = None,
) -> CompressResult:
    """Apply ``config`` to ``model`` for each of its formats; write and record under ``out``.

    ``model``: a MODEL spec, a LoadedModel, or a function that loads one (called once OUT is
    known to be usable, so a bad ``-o`` fails before a long load). ``data``: a DATA spec
    (``normalize`` applies to image sources), a Dataset (both split with the config's seed:
    calibration from the train part, its first ``calib_size`` samples; the metric on the
    held-out eval part), or ready Splits; None measures agreement with the source model on
    seeded random inputs. Static int8 without data raises an InputError unless the config
    allows random calibration. Labels that do not fit the model's classes are refused
    before any work. ``budget``: per-layer sensitivity (saved as ``sensitivity.json``) and a
    maximum drop, met by keeping the most sensitive layers in float; a budget no step meets
    keeps the best artifact as ``*.over-budget.*`` and raises a ToleranceError.
    ``progress``: a callback that receives the formats done, the float exports and their
    checks, calibration batches and training epochs (:mod:`edgepipe.progress`); nothing is
    reported without one.
    """
    with reporting(progress):
        return _load_and_compress(model, config, out, data, threads, budget, normalize)


def _load_and_compress(model: ModelSource, config: CompressConfig, out: str | Path,
                       data: DataSource, threads: int | None, budget: AccuracyBudget | None,
                       normalize: str | None) -> CompressResult:
    RunDir(out, create=False)  # an OUT that is a file fails here, before any loading
    loaded = load_model(model) if isinstance(model, str) else (
        model if isinstance(model, LoadedModel) else model())
    splits = compress_splits(data, loaded, config, normalize)
    with removed_if_left_empty(out):
        return _compress(loaded, config, out, splits, threads, budget)


def compress_splits(data: DataSource, loaded: LoadedModel, config: CompressConfig,
                    normalize: str | None = None) -> Splits | None:
    """The data of a compress run, loaded for ``loaded``'s inputs and split with the
    config's seed (as ``edgepipe compress --data`` splits it); Splits are used as given."""
    if data is None or isinstance(data, Splits):
        return data
    # labels are checked against the model's classes by _compress, before any work
    dataset = as_dataset(data, loaded.inputs, normalize=normalize,
                         tokenizer=loaded.tokenizer_folder)
    return split(dataset, seed=config.seed, calib_size=getattr(config, "calib_size", 256))


def _compress(loaded: LoadedModel, config: CompressConfig, out: str | Path,
              data: Splits | None, threads: int | None,
              budget: AccuracyBudget | None) -> CompressResult:
    backends = [_backend(config, fmt) for fmt in config.formats]
    budget = budget or AccuracyBudget()
    budget.check_supported(config, config.formats)
    if data is not None:
        for part in (data.calib, data.eval):
            if len(part):
                check_data_fits(part, loaded.inputs)
    check_labels_fit(loaded, data)
    calibration, calib_info = calibration_arrays(loaded, config, data)
    check_set, data_info = make_check_set(loaded, config, data)
    run_dir = RunDir(out)
    result = CompressResult(run_dir.path, config.method, data=data_info)
    failures: list[tuple[str, EdgepipeError]] = []  # (format, error): the others go on
    with run_dir.staging() as staging:
        float_dir = staging / "float"
        try:
            export_model(loaded, float_dir, ExportConfig(formats=config.formats,
                                                         seed=config.seed, threads=threads,
                                                         name=config.name),
                         preprocessing=None if data is None else data.preprocessing)
        except EdgepipeError as exc:
            made = getattr(exc, "result", None)
            if made is None or not made.artifacts or disk_full(exc):
                raise
            for failure in made.failed:
                failures.append((failure["format"], EdgepipeError(
                    f"the float model's {failure['format']} export failed: "
                    f"{failure['reason'].splitlines()[0]}", reference="export-failed")))
        float_records = {r.format: r for r in RunDir(float_dir).read_manifest().artifacts}
        reference, baseline = reference_outputs(loaded, check_set, threads)
        result.baseline = baseline
        staged: list[tuple[list[Path], ArtifactRecord | CompressedArtifact]] = []
        used: list[Path] = []  # checkpoints of trained models this run wrote or reused
        missed: list[str] = []
        measure = _Measure(loaded, config, check_set, reference, baseline, calib_info,
                           data_info, threads)
        step = f"compress {config.method}"
        for done, (fmt, backend) in enumerate(zip(config.formats, backends, strict=True)):
            report(step, done, len(config.formats), f"{fmt} ({done + 1} of "
                   f"{len(config.formats)})")
            if fmt not in float_records:
                continue
            try:
                staged += _compress_format(measure, fmt, backend, float_dir, float_records[fmt],
                                           staging, calibration, data, budget, result, missed,
                                           checkpoint_folder(run_dir.path), used)
            except Exception as exc:
                error = backend_missing(exc, f"--method {config.method} for {fmt}") or exc
                if len(config.formats) == 1 or disk_full(error):
                    if error is exc:
                        raise
                    raise error from exc
                log.debug("%s failed", fmt, exc_info=True)
                failures.append((fmt, error if isinstance(error, EdgepipeError) else EdgepipeError(
                    f"Unexpected {type(exc).__name__}: {first_line(exc)} (a bug in edgepipe "
                    "or the backend; --debug shows the traceback)",
                    reference="internal-error")))
        report(step, len(config.formats), len(config.formats), "done")
        if failures and not staged:
            raise failures[0][1]
        discard(used)  # the artifacts are made: their trained models are not needed
        for files, record in staged:
            run_dir.publish(files)
            if isinstance(record, CompressedArtifact):
                run_dir.add_artifact(record.record())
                result.artifacts.append(record)
            else:
                run_dir.add_artifact(record)
                result.float_artifacts.append(record)
        for fmt, table in (result.sensitivity or {}).items():
            name = "sensitivity.json" if len(config.formats) == 1 else f"sensitivity.{fmt}.json"
            atomic_write_json(run_dir.path / name,
                              {"model": loaded.spec, "format": fmt, **table.to_dict()})
    result.failed = [FailedFormat(fmt, error.reference, error.message, error.hint)
                     for fmt, error in failures]
    document = result.to_dict()
    run_dir.add_step(ManifestStep("compress", {**config.to_dict(), **budget.to_dict()}, {
        "artifacts": [a.name for a in result.artifacts],
        "float_artifacts": [a.name for a in result.float_artifacts],
        "failed": document["failed"],
        "calibration": None if calib_info is None else calib_info.to_dict(),
        "data": document["data"], "budget": document["budget"]}))
    if failures:
        error = EdgepipeError(
            f"{len(failures)} of {len(config.formats)} format(s) failed: " + "; ".join(
                f"{fmt}: {error.reference}: {error.message.splitlines()[0]}"
                for fmt, error in failures) + ". Made and checked: "
            + ", ".join(a.name for a in result.artifacts) + ".",
            hint="the other formats' artifacts are in OUT and its manifest.json; run the "
            "failed format alone (or with --debug) for its details.",
            reference="partly-failed", details={"failed": document["failed"],
                                                "result": document})
        error.exit_code = PARTIAL_EXIT
        error.result = result  # type: ignore[attr-defined]
        raise error
    if missed:
        raise ToleranceError(
            "The accuracy budget was not met: " + "; ".join(missed) + ".",
            hint="the best artifact found is kept under the name above (recorded in "
            "manifest.json with every step); raise --max-drop, try another --calibration, "
            "or keep more of the model in float with --exclude.",
            reference="budget-not-met", details={"budget": document["budget"]})
    return result


@dataclasses.dataclass
class _Measure:
    """What every format of one run is measured against: the check set, the source
    model's outputs and metric on it, and how calibration and data were used."""

    loaded: LoadedModel
    config: CompressConfig
    check_set: Dataset
    reference: list[np.ndarray]
    baseline: EvalResult | None
    calibration: CalibrationUsed | None
    data: CheckData
    threads: int | None


def _compress_format(measure: _Measure, fmt: str, backend: str, float_dir: Path,
                     float_record: ArtifactRecord, staging: Path, calibration: Any,
                     data: Splits | None, budget: AccuracyBudget, result: CompressResult,
                     missed: list[str], checkpoints: Path | None, used: list[Path],
                     ) -> list[tuple[list[Path], ArtifactRecord | CompressedArtifact]]:
    """One format: the float artifact measured, the backend run, the result tuned to the
    budget and measured; what to publish (float and compressed), nothing written to OUT."""
    loaded, config, threads = measure.loaded, measure.config, measure.threads
    float_path = float_dir / float_record.path
    float_eval = _evaluate(float_path, measure.check_set, measure.reference, loaded.spec,
                           threads)
    float_record.metrics["eval"] = eval_summary(float_eval)
    job = CompressJob(loaded, config, fmt, float_path,
                      staging / f"{config.name or loaded.name}.{config.method}{formats.suffix(fmt)}",
                      calibration, threads, data=data, checkpoints=checkpoints)
    started = time.perf_counter()
    with _keeping_checkpoints(job.checkpoints, used):
        compressed: Compressed = importlib.import_module(backend).compress(job)
        seconds = time.perf_counter() - started
        tuned = tune(job, compressed, lambda c: _check(c, measure.check_set, measure.reference,
                                                       loaded.spec, threads),
                     float_eval, budget)
    compressed, evaluation = tuned.compressed, tuned.evaluation
    artifact = _artifact(measure, fmt, compressed, tuned.session, evaluation, float_eval,
                         float_record, tuned.parity, seconds)
    if budget.active:
        _record_budget(result, artifact, fmt, tuned.report(budget), tuned.sensitivity, missed)
    for item in artifact.tool.left_in_float:
        log.warning("%s: %s (%s) left in float: %s", artifact.name, item.layer, item.op,
                    item.reason)
    return [([float_dir / f for f in float_record.files], float_record),
            (compressed.files, artifact)]


@contextlib.contextmanager
def _keeping_checkpoints(folder: Path | None, used: list[Path]) -> Iterator[None]:
    """Note the checkpoints written or reused in the block (see
    :mod:`edgepipe.compress.checkpoint`); on a failure, say where the trained model is kept:
    in the error's hint, or logged beside an unexpected error."""
    since = time.time() - 1.0

    def collect() -> None:
        if folder is not None and folder.is_dir():
            used.extend(p for p in sorted(folder.glob("*.pt"))
                        if p.stat().st_mtime >= since and p not in used)

    try:
        yield
    except EdgepipeError as exc:
        collect()
        exc.hint = (exc.hint or "") + kept_hint(used)
        raise
    except Exception:
        collect()
        if kept_hint(used):
            log.error(kept_hint(used).strip())
        raise
    collect()


def _record_budget(result: CompressResult, artifact: CompressedArtifact, fmt: str,
                   outcome: BudgetOutcome, table: SensitivityTable | None,
                   missed: list[str]) -> None:
    """Put the budget's path and the sensitivity table on the artifact and the result."""
    artifact.metrics.budget = outcome
    artifact.tool.layer_precision = outcome.layers
    result.budget = {**(result.budget or {}),
                     fmt: dataclasses.replace(outcome, artifact=artifact.name)}
    if table is not None:
        result.sensitivity = {**(result.sensitivity or {}), fmt: table}
    if outcome.met is False:
        last = outcome.steps[-1]
        best = min(outcome.steps, key=lambda step: step.drop)
        missed.append(
            f"{artifact.name} ({fmt}): best drop {best.drop:.4g} {last.metric} points with "
            f"{len(best.kept)} layer(s) kept in {in_words(outcome.backup_precision)}, over --max-drop "
            f"{outcome.max_drop:g} after {len(outcome.steps)} step(s)")


def _backend(config: CompressConfig, fmt: str) -> str:
    backends = type(config).backends
    if fmt in backends:
        return backends[fmt]
    available = list(backends)
    raise UnsupportedError(f"--method {config.method} is not available for {fmt}.",
                           hint=f"--method {config.method} works for: {', '.join(available)}.",
                           reference="method-not-available")


def _evaluate(path: Path, dataset: Dataset, reference: list[np.ndarray], reference_name: str,
              threads: int | None) -> EvalResult:
    from edgepipe.runtime import open_artifact

    session = open_artifact(path, threads=threads)
    result = evaluate_session(session, dataset, reference=reference, threads=threads,
                              name=path.name)
    result.reference = reference_name
    return result


def _check(compressed: Compressed, dataset: Dataset, reference: list[np.ndarray],
           reference_name: str, threads: int | None) -> tuple[EvalResult, dict[str, Any], Any]:
    """Measure the compressed artifact; fp16 must also pass the fp16 parity tolerance."""
    from edgepipe.runtime import open_artifact

    try:
        session = open_artifact(compressed.path, threads=threads)
        started = time.perf_counter()
        outputs, batch, layout = predict(session, dataset)
        seconds = time.perf_counter() - started
    except InputError:
        raise
    except Exception as exc:
        raise UnsupportedError(
            f"The compressed artifact does not run in its runtime: {type(exc).__name__}: "
            f"{first_line(exc)}",
            hint="this is a bug in the backend or a layer its runtime cannot run; try another "
            "method or format, or exclude the layer. --debug shows the traceback.",
            reference="compressed-artifact-failed") from exc
    result = score(session, outputs, dataset, reference_outputs=reference,
                   reference_name=reference_name, batch=batch, layout=layout,
                   seconds=seconds, name=compressed.path.name)
    names = [s.name for s in session.outputs]
    if compressed.precision == "fp16":
        report = compare_outputs(reference, outputs, names, DEFAULT_ATOL["fp16"])
        if not report.passed:
            raise ToleranceError(
                f"{compressed.path.name} differs from the float model beyond the fp16 "
                "tolerance:\n" + "\n".join(o.line() for o in report.outputs),
                hint="the model has values fp16 cannot hold (over 65504, or tiny weights); "
                "keep it in fp32, or use int8 with calibration.",
                reference="tolerance-exceeded", details=report.to_dict())
        return result, {**report.to_dict(), "gated": True, "reference": reference_name}, session
    return result, {
        "gated": False, "passed": True, "reference": reference_name,
        "rule": "int8, low-bit and factorized artifacts are judged by their metric and drop "
        "(see metrics), not by a tolerance",
        "outputs": [o.to_dict() for o in result.outputs]}, session


def _artifact(measure: _Measure, fmt: str, compressed: Compressed, session: Any,
              evaluation: EvalResult, float_eval: EvalResult, float_record: ArtifactRecord,
              parity: dict[str, Any], seconds: float) -> CompressedArtifact:
    """The record of a compressed artifact, measured against the float one of its format."""
    sizes = {f.name: f.stat().st_size for f in compressed.files}
    hashes = {f.name: file_sha256(f) for f in compressed.files}
    drop = None
    if evaluation.metric == "top1" and float_eval.metric == "top1":
        drop = float_eval.value - evaluation.value
    baseline = measure.baseline
    metrics = ArtifactMetrics(
        evaluation.metric, evaluation.to_dict()["value"], float_eval.to_dict()["value"],
        float_record.name, baseline.value if baseline else None, drop, evaluation.samples,
        measure.data, evaluation, evaluation.host, round(seconds, 3))
    tool = ToolRecord(dict(compressed.tool), float_record.name,
                      [LeftInFloat.from_dict(item) for item in compressed.left_in_float],
                      list(compressed.notes),
                      {n: {"size_bytes": sizes[n], "sha256": hashes[n]} for n in sizes})
    main = compressed.files[0]
    return CompressedArtifact(
        name=main.name, path=main.name, format=fmt, precision=compressed.precision,
        size_bytes=sum(sizes.values()), sha256=hashes[main.name],
        inputs=ArtifactRecord.tensor_list(session.inputs),
        outputs=ArtifactRecord.tensor_list(session.outputs),
        files=[f.name for f in compressed.files], source=measure.loaded.describe(),
        config=measure.config.to_dict(), calibration=measure.calibration, tool=tool,
        parity=parity, metrics=metrics, layout=float_record.layout,
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        preprocessing=float_record.preprocessing or None)
