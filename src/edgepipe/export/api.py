"""``export_model``: every requested format, each checked in its own runtime, then recorded.

For each format: the exporter writes into a staging folder in OUT; the artifact is opened
in the runtime it will be deployed with and run on the parity inputs; its outputs are
compared with the reference (the torch module, or ONNX Runtime on an ONNX source). A good
artifact is moved into OUT and recorded in ``manifest.json``; one that fails its check is
moved in as ``NAME.failed`` so it is not taken for a good one, and a ToleranceError lists
each output's worst difference once every format has been tried.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe import formats
from edgepipe.data.preprocessing import Preprocessing
from edgepipe.errors import (
    PARTIAL_EXIT,
    EdgepipeError,
    InputError,
    ModelError,
    ShapeError,
    ToleranceError,
    backend_missing,
    disk_full,
    first_line,
    require_backends,
)
from edgepipe.export.base import (
    Exported,
    ExportJob,
    chunk_size,
    layout_name,
    log,
    to_channel_first,
    to_channel_last,
)
from edgepipe.export.config import ExportConfig
from edgepipe.export.validate import ParityReport, compare_outputs
from edgepipe.model import LoadedModel, file_sha256, load_model, run_torch
from edgepipe.progress import ProgressCallback, report, reporting
from edgepipe.rundir import ArtifactRecord, ManifestStep, RunDir
from edgepipe.runtime.base import run_batched
from edgepipe.tensors import DynamicAxis, format_shape


@dataclass
class ExportResult:
    """What an export run produced: good artifacts (manifest records) and failed ones."""

    out: Path
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    support: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "artifacts": self.artifacts, "failed": self.failed,
                "support": self.support}


def export_model(
    model: LoadedModel | str,
    out: str | Path,
    config: ExportConfig | None = None,
    *,
    inputs: list[np.ndarray] | None = None,
    data: Any = None,
    samples: int = 64,
    normalize: str | None = None,
    preprocessing: Preprocessing | None = None,
    progress: ProgressCallback | None = None,
    **options: Any,
) -> ExportResult:
    """Export ``model`` (a MODEL spec or LoadedModel) to each format of ``config`` under
    ``out``, parity-checking each, and record the step in ``OUT/manifest.json``.

    ``options`` build the config when none is given (``formats=("onnx", "tflite")``,
    ``atol=1e-3``, ...). Parity runs on ``inputs`` (one array per model input, any number of
    samples: they run in chunks of the model's batch), or on the first ``samples`` of the
    eval split (seeded with the config's seed) of ``data`` (a DATA spec, Dataset, Splits or
    arrays, ``normalize`` as ``--normalize``), else on seeded random inputs of the model's
    input specs; the manifest says which. Each artifact's record keeps ``preprocessing``
    (how its input data is prepared; by default, how ``data`` was). Before any format is
    converted, every op is checked against each format's converter
    (:mod:`edgepipe.export.support`): UnsupportedError ``unsupported-operators`` names the ops, their layers and formats.
    Raises ToleranceError when an artifact's outputs differ from the reference beyond the
    tolerance. ``progress``: a callback that receives the formats done and each parity
    check (:mod:`edgepipe.progress`); nothing is reported without one.
    """
    with reporting(progress):
        return _export_model(model, out, config or ExportConfig(**options), inputs, data,
                             samples, normalize, preprocessing)


def _export_model(model: LoadedModel | str, out: str | Path, config: ExportConfig,
                  inputs: list[np.ndarray] | None, data: Any, samples: int,
                  normalize: str | None, preprocessing: Preprocessing | None) -> ExportResult:
    RunDir(out, create=False)  # an OUT that is a file fails here, before loading
    loaded = load_model(model) if isinstance(model, str) else model
    if data is not None:
        inputs, source = parity_data(data, loaded, samples=samples, seed=config.seed,
                                     normalize=normalize)
        preprocessing = preprocessing or source.preprocessing
    parity_inputs, described = _parity_inputs(loaded, config, inputs)
    if data is not None:
        described.update(source.to_dict())
    run_dir = RunDir(out)
    size = chunk_size(loaded, parity_inputs)
    sample = [a[:size] for a in parity_inputs]  # the example converters trace with
    reference, output_names = _reference(loaded, parity_inputs, size)
    lengths = _length_checks(loaded, parity_inputs, size)
    errors: list[EdgepipeError] = []
    missing = {fmt: error for fmt in config.formats
               if (error := require_backends(formats.get(fmt).requires, f"{fmt} export"))}
    present = tuple(fmt for fmt in config.formats if fmt not in missing)
    if not present:
        raise next(iter(missing.values()))
    support = _check_support(loaded, replace(config, formats=present), sample)
    result = ExportResult(run_dir.path, support=support.to_dict())
    refused = {verdict.format for verdict in support.unsupported}
    total = len(config.formats)
    for done, fmt in enumerate(config.formats):
        report("export", done, total, f"{fmt} ({done + 1} of {total})")
        if fmt in missing:  # a backend not installed fails its format alone
            errors.append(missing[fmt])
            result.failed.append({"format": fmt, "path": None, "reason": missing[fmt].message,
                                  "lines": [], "error": missing[fmt].to_dict()})
            continue
        if fmt in refused:  # one format's converter lacking an op does not sink the others
            error = support.unsupported_error([fmt])
            errors.append(error)
            result.failed.append({"format": fmt, "path": None, "reason": "unsupported "
                                  "operators", "lines": error.message.splitlines()[1:],
                                  "error": error.to_dict()})
            continue
        job = ExportJob(loaded, Path(), config, sample, reference, output_names,
                        parity_inputs=parity_inputs, length_checks=lengths)
        try:
            try:
                _export_one(fmt, job, run_dir, described, result, preprocessing)
            except ModuleNotFoundError as exc:
                missing = backend_missing(exc, f"{fmt} export")
                if missing is None:
                    raise
                raise missing from exc
        except EdgepipeError as error:  # this format failed; the others go on
            if disk_full(error):
                raise  # so would every other format (LiteRT's converter aborts the process)
            log.debug("%s export failed", fmt, exc_info=True)
            errors.append(error)
            result.failed.append({"format": fmt, "path": None, "reason": error.message,
                                  "lines": [], "error": error.to_dict()})
    report("export", total, total, "done")
    run_dir.add_step(ManifestStep("export", config.to_dict(), {
        "support": {fmt: v["status"] for fmt, v in result.support.get("formats", {}).items()},
        "artifacts": [a["name"] for a in result.artifacts],
        "failed": [{"format": f["format"], "path": f["path"]} for f in result.failed],
    }))
    if result.failed:
        raise _failure(result, errors)
    return result


def _failure(result: ExportResult, errors: list[EdgepipeError]) -> EdgepipeError:
    """The error for the formats that failed; with exit status PARTIAL_EXIT when others
    were made. A lone failure of one kind keeps its own error (reference and hint)."""
    parity = [f for f in result.failed if "error" not in f]
    if len(errors) == 1 and not parity and not result.artifacts:
        return errors[0]
    lines = []
    for failure in result.failed:
        where = f" ({failure['path']})" if failure["path"] else ""
        first = failure["reason"].splitlines()[0] if failure["reason"] else ""
        lines.append(f"{failure['format']}{where}: {first}")
        lines += [f"  {line}" for line in failure.get("lines", [])]
    made = ", ".join(a["name"] for a in result.artifacts)
    if parity and not errors:
        error: EdgepipeError = ToleranceError(
            "Parity check failed; the artifact was kept renamed:\n" + "\n".join(lines),
            hint="each failed artifact is kept as NAME.failed for inspection. Loosen the "
            "check with --atol (a fraction of the output scale) only if the difference is "
            "acceptable for your use; otherwise export another format or opset.",
            details=result.to_dict(),
        )
    else:
        error = EdgepipeError(
            f"{len(result.failed)} of {len(result.failed) + len(result.artifacts)} format(s) "
            "failed:\n" + "\n".join(lines), hint="the other formats were made and checked"
            f" ({made}); --debug shows each failure's traceback." if made else
            "--debug shows each failure's traceback.", reference="export-failed",
            details=result.to_dict())
    if result.artifacts:
        error.message += f"\nMade and checked: {made}."
        error.exit_code = PARTIAL_EXIT
    error.result = result  # type: ignore[attr-defined]  # what was made, for callers
    return error


def _check_support(loaded: LoadedModel, config: ExportConfig,
                   sample: list[np.ndarray]) -> Any:
    """Which requested formats lack an op the model uses, before converting anything; when
    every format does, an UnsupportedError naming the ops, their layers and formats."""
    from edgepipe.export.support import check_support

    report = check_support(loaded, config.formats, sample, config.opset)
    if len(report.unsupported) == len(config.formats):
        report.raise_if_unsupported()
    for verdict in report.formats:
        for note in verdict.notes:
            log.debug("operator check, %s: %s", verdict.format, note)
    log.debug("operator check took %.2f s", report.seconds)
    return report


def _export_one(fmt: str, job: ExportJob, run_dir: RunDir, described: dict[str, Any],
                result: ExportResult, preprocessing: Preprocessing | None = None) -> None:
    entry = formats.get(fmt)
    assert entry.exporter is not None  # ExportConfig took only exportable formats
    exporter = formats.load(entry.exporter)
    with run_dir.staging() as staging:
        job.path = staging / f"{job.config.stem(job.source)}{entry.suffix}"
        started = time.perf_counter()
        exported: Exported = exporter.export(job)
        export_seconds = time.perf_counter() - started
        started = time.perf_counter()
        try:
            parity, session = _check(exported, job, fmt)
        except EdgepipeError:
            raise
        except Exception as exc:  # the runtime refused the artifact: it is not usable
            moved = run_dir.publish(exported.files, suffix=".failed")
            result.failed.append({"format": fmt, "path": str(moved[0]), "reason":
                                  f"the artifact does not run in its runtime: "
                                  f"{type(exc).__name__}: {first_line(exc)}", "lines": []})
            return
        check_seconds = time.perf_counter() - started
        parity_dict = {**parity.to_dict(), "inputs": described, "runtime": session.describe()}
        checked = [{"name": c.axis.name, "sizes": [c.axis.size, c.size]}
                   for c in job.length_checks if _takes(session.inputs, c.axis, job.input_names)]
        if checked:
            parity_dict["dynamic_axes"] = checked
        if not parity.passed:
            layers = _diagnose(exported, job)
            moved = run_dir.publish(exported.files, suffix=".failed")
            lines = [o.line() for o in parity.outputs]
            if layers.get("first_divergent"):
                row = next(r for r in layers["layers"] if r["layer"] == layers["first_divergent"])
                lines.append(f"first layer over the tolerance: {row['layer']} (max|diff| "
                             f"{row['max_abs_diff']:.3g}, limit {row['limit']:.3g}; "
                             f"{layers['compared']} layers compared)")
            result.failed.append({"format": fmt, "path": str(moved[0]), "parity": parity_dict,
                                  "reason": "outputs differ from the reference",
                                  "layers": layers, "lines": lines})
            return
        sizes = {f.name: f.stat().st_size for f in exported.files}
        hashes = {f.name: file_sha256(f) for f in exported.files}
        moved = run_dir.publish(exported.files)
    record = _record(fmt, moved, sizes, hashes, exported, job, session, parity_dict,
                     {"export_seconds": round(export_seconds, 3),
                      "check_seconds": round(check_seconds, 3)})
    if preprocessing is not None:
        record.preprocessing = preprocessing.with_layout(
            next((record.layout.get(s.name) for s in record.inputs), None))
    run_dir.add_artifact(record)
    result.artifacts.append(record.to_dict())


def _check(exported: Exported, job: ExportJob, fmt: str) -> tuple[ParityReport, Any]:
    """Run the artifact in its runtime on the parity inputs; compare with the reference."""
    from edgepipe.runtime import open_artifact

    session = open_artifact(exported.path, threads=job.config.threads)
    arrays = [to_channel_last(a) if i in exported.channel_last_inputs else a
              for i, a in enumerate(job.parity_inputs)]
    chunks = -(-len(arrays[0]) // job.chunk) if arrays and job.chunk else 1
    ran = 0

    def run(chunk: list[np.ndarray]) -> Any:
        nonlocal ran
        outputs = session.run(chunk)
        ran += 1
        report(f"parity check ({fmt})", ran, chunks, f"chunk {ran}/{chunks}")
        return outputs

    outputs = run_batched(run, arrays, job.chunk)
    outputs = [to_channel_first(a) if i in exported.channel_last_outputs else a
               for i, a in enumerate(outputs)]
    atol = job.config.tolerance(exported.precision)
    parity = compare_outputs(job.reference, outputs, job.output_names, atol)
    for check in job.length_checks:
        if not _takes(session.inputs, check.axis, job.input_names):
            continue  # this format fixed the axis (TFLite)
        outputs = run_batched(session.run, check.inputs, job.chunk)
        names = [f"{name} at {check.axis.name} {check.size}" for name in job.output_names]
        parity.outputs += compare_outputs(check.reference, outputs, names, atol).outputs
    return parity, session


def _takes(specs: list[Any], axis: DynamicAxis, names: list[str]) -> bool:
    """Whether an artifact's inputs (``specs``, in the order of the source's ``names``:
    LiteRT and ExecuTorch rename them) keep ``axis`` dynamic."""
    carrying = [spec for name, spec in zip(names, specs, strict=False)
                if name in axis.inputs and spec.rank > axis.axis]
    return bool(carrying) and all(not isinstance(s.shape[axis.axis], int) for s in carrying)


@dataclass
class LengthCheck:
    """Parity at a second size of a dynamic axis (half its nominal size), so that an
    artifact that keeps the axis dynamic is shown to take another length."""

    axis: DynamicAxis
    size: int
    inputs: list[np.ndarray]
    reference: list[np.ndarray]


def _length_checks(loaded: LoadedModel, parity_inputs: list[np.ndarray],
                   chunk: int) -> list[LengthCheck]:
    """For each of the source's dynamic axes: the parity inputs cut to half the nominal
    size along it (for text, the first tokens with their mask), and the source's outputs
    on them."""
    checks = []
    for axis in loaded.dynamic_axes:
        size = max(1, axis.size // 2)
        if size == axis.size or loaded.module is None:
            continue
        cut = [np.ascontiguousarray(np.take(a, range(size), axis=axis.axis))
               if spec.name in axis.inputs else a
               for spec, a in zip(loaded.inputs, parity_inputs, strict=True)]
        reference, _ = _reference(loaded, cut, chunk)
        checks.append(LengthCheck(axis, size, cut, reference))
    return checks


def _diagnose(exported: Exported, job: ExportJob) -> dict[str, Any]:
    """Per-layer comparison for a failed artifact; a diagnosis that fails only says so."""
    if job.source.kind != "torch" or job.source.module is None:
        return {"available": False, "reason": "the source is not a torch model"}
    from edgepipe.export.layers import compare_layers

    try:
        return compare_layers(job.source.module, job.sample, exported.path,
                              job.config.tolerance(exported.precision), job.config.threads,
                              exported.channel_last_inputs,
                              dynamic_shapes=job.torch_dynamic_shapes(batch=False)
                              if exported.path.suffix == ".pte" else None)
    except Exception as exc:  # a diagnosis must never hide the parity failure itself
        log.debug("per-layer comparison failed", exc_info=True)
        return {"available": False, "reason": f"{type(exc).__name__}: {first_line(exc)}"}


def _record(fmt: str, files: list[Path], sizes: dict[str, int], hashes: dict[str, str],
            exported: Exported, job: ExportJob, session: Any, parity: dict[str, Any],
            metrics: dict[str, Any]) -> ArtifactRecord:
    layout = {}
    for i, spec in enumerate(session.inputs):
        layout[spec.name] = layout_name(spec.rank, i in exported.channel_last_inputs)
    for i, spec in enumerate(session.outputs):
        layout[spec.name] = layout_name(spec.rank, i in exported.channel_last_outputs)
    main = files[0]
    return ArtifactRecord(
        name=main.name, path=main.name, format=fmt, precision=exported.precision,
        size_bytes=sum(sizes.values()), sha256=hashes[main.name],
        inputs=ArtifactRecord.tensor_list(session.inputs),
        outputs=ArtifactRecord.tensor_list(session.outputs),
        files=[f.name for f in files], source=job.source.describe(),
        config=job.config.to_dict(),
        tool={**exported.tool, "files": {name: {"size_bytes": sizes[name], "sha256": hashes[name]}
                                         for name in sizes}},
        parity=parity, metrics=metrics, layout=layout,
    )


@dataclass(frozen=True)
class ParityData:
    """Which data samples parity ran on (recorded with every artifact's check)."""

    source: str
    seed: int
    count: int
    split: str = "eval"
    preprocessing: Preprocessing | None = None  # how the data was prepared (not in to_dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "data", "source": self.source, "split": self.split, "seed": self.seed,
                "count": self.count}


def parity_data(data: Any, loaded: LoadedModel, *, samples: int, seed: int,
                normalize: str | None = None) -> tuple[list[np.ndarray], ParityData]:
    """The first ``samples`` of the seeded eval split of ``data``, one array per model
    input (all of the data when it is too small to split), and where they came from."""
    from edgepipe.data import Splits, as_dataset, make_splits

    if samples < 1:
        raise InputError(f"--samples {samples} must be at least 1.",
                         hint="give how many data samples parity should run on, e.g. 64.",
                         reference="bad-samples")
    if isinstance(data, Splits):
        part, seed = as_dataset(data.eval, loaded.inputs), data.seed
    else:
        dataset = as_dataset(data, loaded.inputs, normalize=normalize,
                             tokenizer=loaded.tokenizer_folder)
        part = make_splits(dataset, seed=seed).eval
        part = part if len(part) else dataset  # too few samples to split: use them all
    count = min(samples, len(part))
    arrays = [part.inputs[s.name][:count] for s in loaded.inputs]
    source = data if isinstance(data, (str, Path)) else part.source
    return arrays, ParityData(str(source), seed, count, preprocessing=part.preprocessing)


def _parity_inputs(loaded: LoadedModel, config: ExportConfig,
                   inputs: list[np.ndarray] | None) -> tuple[list[np.ndarray], dict[str, Any]]:
    """The arrays parity runs on, and how they were made (for the manifest)."""
    if inputs is None:
        sample = loaded.sample_inputs(config.batch, config.seed)
        ints = "ints in [0, 100)" + (
            " folded into " + ", ".join(f"{k} [0, {v})" for k, v in loaded.value_limits.items())
            if loaded.value_limits else "")
        return sample, {"kind": "random", "distribution": f"N(0,1) floats, {ints}",
                        "batch": config.batch, "seed": config.seed,
                        "shapes": [list(a.shape) for a in sample]}
    arrays = [np.asarray(a) for a in inputs]
    if len(arrays) != len(loaded.inputs):
        raise ShapeError(
            f"The model takes {len(loaded.inputs)} input(s) "
            f"({', '.join(s.name for s in loaded.inputs)}); {len(arrays)} array(s) were given.",
            hint="give one array per model input, in order.", reference="parity-inputs")
    arrays = [a.astype(spec.dtype, copy=False) for a, spec in zip(arrays, loaded.inputs,
                                                                   strict=True)]
    return arrays, {"kind": "given", "shapes": [list(a.shape) for a in arrays]}


def _reference(loaded: LoadedModel, sample: list[np.ndarray],
               size: int) -> tuple[list[np.ndarray], list[str]]:
    """The source model's outputs on the parity inputs, and the names outputs get."""
    if loaded.kind == "onnx":
        from edgepipe.runtime.onnx_runtime import OnnxRuntimeSession

        assert loaded.onnx_path is not None
        session = OnnxRuntimeSession(loaded.onnx_path)
        return run_batched(session.run, sample, size), [s.name for s in session.outputs]
    assert loaded.module is not None
    try:
        outputs = run_batched(lambda chunk: run_torch(loaded.module, chunk), sample, size)
    except Exception as exc:
        shapes = ", ".join(format_shape(a.shape) for a in sample)
        raise ModelError(
            f"'{loaded.spec}' raised {type(exc).__name__} on inputs of shape {shapes}: "
            f"{first_line(exc)}",
            hint="check the input shapes against what the model takes; --debug shows the "
            "model's traceback.", reference="forward-failed") from exc
    names = ["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))]
    return outputs, names
