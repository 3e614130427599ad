"""``profile ARTIFACT --target T``: measured here or on a device, estimated for the others.

The target is resolved once (:func:`edgepipe.profiling.target.resolve_target`: the catalog
entry, how it is reached, its runner); :func:`profile` opens and checks the artifact, builds
the :class:`~edgepipe.profiling.runner.MeasureJob` and writes what ``target.runner.measure``
returns into the Profile document. Estimates are labelled ``estimated`` with the model
named and its measured error.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.devices.schema import DeviceEntry
from edgepipe.errors import InputError
from edgepipe.formats import by_suffix, runtime_of_suffix
from edgepipe.profiling.graph import artifact_record, summary_for
from edgepipe.profiling.runner import InputBatch, LatencySettings, MeasureJob
from edgepipe.profiling.target import DeviceLink, Target, resolve_target
from edgepipe.progress import timed
from edgepipe.runtime import default_threads, open_artifact
from edgepipe.tensors import format_shape

PROFILE_SCHEMA_VERSION = 1


def input_batch(session_inputs: list[Any], data: str | None, batch: int, seed: int,
                normalize: str | None = None, *, tokenizer: str | None = None,
                limits: dict[str, int] | None = None,
                artifact: Path | None = None) -> InputBatch:
    """Real samples from ``data`` (the first ``batch``; text tokenized with the folder
    ``tokenizer``, onto ``artifact``'s renamed inputs where its manifest records the
    source's) or seeded random arrays (integer inputs folded into ``limits``, by input
    name, where given)."""
    for spec in session_inputs:
        if spec.shape and isinstance(spec.shape[0], int) and spec.shape[0] != batch:
            raise InputError(
                f"Input {spec.name!r} has a fixed batch of {spec.shape[0]}; --batch-size {batch} "
                "was asked for.", hint=f"use --batch-size {spec.shape[0]}, or export with a dynamic "
                "batch (`edgepipe export ... --dynamic-batch`).", reference="fixed-batch")
    specs = [s.with_shape(s.concrete_shape(batch)) for s in session_inputs]
    if data is None:
        limits = limits or {}
        arrays = [s.sample(batch, seed + i) for i, s in enumerate(specs)]
        arrays = [a % limits[s.name] if s.name in limits and a.dtype.kind in "iu" else a
                  for s, a in zip(specs, arrays, strict=True)]
        # the limits name the source's inputs and the artifact's renamed ones: say the latter
        folded = "".join(f", {s.name} in [0, {limits[s.name]})" for s in specs
                         if s.name in limits)
        shapes = ", ".join(f"{s.name} {format_shape(s.shape)}" for s in specs)
        return InputBatch(arrays, "random", f"seeded random (seed {seed}) {shapes}: N(0,1) "
                          f"floats, integers in [0, 100){folded}")
    from edgepipe.data import load_data_for_model

    back: dict[str, str] = {}
    named = specs
    if tokenizer is not None and artifact is not None:  # text for renamed inputs (LiteRT)
        from edgepipe.recorded import source_named

        named, back = source_named(artifact, specs)
    dataset = load_data_for_model(data, named, normalize=normalize, tokenizer=tokenizer)
    if back:
        from edgepipe.recorded import renamed

        dataset = renamed(dataset, back, specs)
    count = len(next(iter(dataset.inputs.values())))
    if count < batch:
        raise InputError(f"--data {data} has {count} samples; the batch is {batch}.",
                         hint="lower --batch-size or give more data.", reference="data-too-small")
    arrays = [np.ascontiguousarray(dataset.inputs[s.name][:batch]) for s in specs]
    return InputBatch(arrays, "data", f"the first {batch} sample(s) of {dataset.source}")


def artifact_block(path: Path) -> dict[str, Any]:
    """Format, runtime, files and size on disk (an IR's .bin counted with its .xml)."""
    files = [path]
    fmt = by_suffix(path.suffix)
    files += [path.with_suffix(c) for c in (fmt.companions if fmt else ())
              if path.with_suffix(c).is_file()]
    if path.suffix.lower() == ".onnx" and Path(f"{path}.data").is_file():
        files.append(Path(f"{path}.data"))
    entry = artifact_record(path)
    record = entry.record if entry is not None else {}
    return {"path": str(path), "runtime": runtime_of_suffix()[path.suffix.lower()],
            "format": record.get("format", path.suffix.lstrip(".")),
            "precision": record.get("precision"),
            "files": [f.name for f in files],
            "size_bytes": {"value": sum(f.stat().st_size for f in files), "label": "measured",
                           "how": "bytes on disk of the artifact's files"}}


def open_checked(path: Path, threads: int, trust_pickle: bool = False) -> Any:
    """The artifact opened here (for its input specs), checked before anything is measured;
    a file that is bad or cannot load is a clear error (see ``open_artifact``)."""
    return open_artifact(path, threads=threads, trust_pickle=trust_pickle)


def check_cpus_option(cpus: str | Sequence[int] | None, batch: int,
                      host: str | None) -> tuple[int, ...] | None:
    """The checks ``profile`` makes before anything else: ``batch`` at least 1, and ``cpus``
    (``"0,2-3"`` or CPU numbers) parsed and, unless profiling on a device (``host``),
    checked against the CPUs this process may use."""
    if batch < 1:
        raise InputError(f"--batch-size {batch} must be at least 1.", hint="give 1 or more.",
                         reference="bad-batch")
    pinned = parse_cpus(cpus) if cpus is None or isinstance(cpus, str) else tuple(
        sorted({int(c) for c in cpus}))
    if pinned and host is None:
        check_cpus(pinned)  # on a device (--host), the agent checks against its own
    return pinned


def settings_for(*, runs: int, duration: float, warmup: int, threads: int | None,
                 cpus: tuple[int, ...] | None, per_layer: bool, energy: bool,
                 energy_window: float, precision: str) -> LatencySettings:
    """The LatencySettings of ``profile``'s options (energy idles for at most 2 s)."""
    return LatencySettings(runs=runs, duration_s=duration, warmup_runs=warmup,
                           threads=threads, cpus=cpus, per_layer=per_layer, energy=energy,
                           energy_idle_s=min(energy_window, 2.0),
                           energy_busy_s=energy_window, precision=precision)


def profile_artifact(artifact: str | Path, target: str | DeviceEntry | Target,
                     settings: LatencySettings, *, data: str | None = None, batch: int = 1,
                     seed: int = 0, normalize: str | None = None,
                     host: str | DeviceLink | None = None, benchmark_model: Path | None = None,
                     identity: Path | None = None, ssh_config: Path | None = None,
                     remote_python: str = "python3", trust_pickle: bool = False,
                     sequence_length: int | None = None) -> Profile:
    """What ``edgepipe profile`` runs once its options are checked: the target resolved
    once with the device behind the ``host`` URL (if any), then :func:`profile`."""
    resolved = resolve_target(target, device=host, benchmark_model=benchmark_model,
                              identity=identity, ssh_config=ssh_config,
                              remote_python=remote_python)
    return profile(artifact, resolved, settings, data=data, batch=batch, seed=seed,
                   normalize=normalize, trust_pickle=trust_pickle,
                   sequence_length=sequence_length)


@dataclass(frozen=True)
class Profile:
    """A profile (what ``edgepipe profile --json`` prints), with its main figures typed.

    ``document`` is the whole profile; the properties read it. A figure that was not
    measured or estimated (an ``unavailable`` label) is None.
    """

    document: dict[str, Any]

    @property
    def mode(self) -> str:
        """``measured`` (here or on a device) or ``estimated``."""
        return str(self.document["mode"])

    @property
    def target(self) -> str:
        return str(self.document["target"]["name"])

    @property
    def artifact(self) -> Path:
        return Path(self.document["artifact"]["path"])

    @property
    def runtime(self) -> str:
        return str(self.document["artifact"]["runtime"])

    @property
    def latency(self) -> dict[str, Any]:
        """The steady-state latency figures in seconds (count, mean_s, p50_s, p90_s, ...)."""
        return dict(self.document["latency"]["steady"])

    @property
    def p50_ms(self) -> float | None:
        """The median steady-state latency in milliseconds."""
        p50 = self.latency.get("p50_s")
        return None if p50 is None else 1e3 * p50

    @property
    def size_bytes(self) -> int:
        """Bytes on disk of the artifact's files."""
        return int(self.document["memory"]["artifact_size_bytes"]["value"])

    @property
    def peak_rss_bytes(self) -> int | None:
        """Peak resident memory of the profiling process (measured runs only)."""
        return (self.document["memory"].get("peak_rss_bytes") or {}).get("value")

    @property
    def energy_mj(self) -> float | None:
        """Energy per inference in millijoules, measured or estimated (see ``document``)."""
        joules = self.document.get("energy", {}).get("joules_per_inference")
        return None if joules is None else 1e3 * joules

    def to_dict(self) -> dict[str, Any]:
        return self.document


def check_cpus(cpus: tuple[int, ...]) -> None:
    """Raise unless every CPU in ``cpus`` is one this process may run on."""
    import os

    from edgepipe.errors import InputError

    try:
        usable = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux: pinning is refused by the agent with its own words
        return
    missing = [c for c in cpus if c not in usable]
    if missing:
        raise InputError(
            f"--cpus names CPU {', '.join(map(str, missing[:8]))}"
            + (" and more" if len(missing) > 8 else "")
            + f", which this machine does not give this process: it may use "
            f"{_ranges(usable)} ({len(usable)} CPU{'s' if len(usable) != 1 else ''}).",
            hint=f"pick CPUs among {_ranges(usable)}, e.g. --cpus {usable[0]}.",
            reference="bad-cpus")


def _ranges(values: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"``."""
    parts: list[str] = []
    for value in values:
        if parts and value == int(parts[-1].split("-")[-1]) + 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{value}"
        else:
            parts.append(str(value))
    return ",".join(parts)


def parse_cpus(text: str | None) -> tuple[int, ...] | None:
    """``"0,2-3"`` -> ``(0, 2, 3)``."""
    if not text:
        return None
    from edgepipe.errors import InputError

    cpus: set[int] = set()
    try:
        for part in text.split(","):
            low, _, high = part.partition("-")
            cpus.update(range(int(low), int(high or low) + 1))
    except ValueError:
        raise InputError(f"Cannot read --cpus {text!r}.", hint="write e.g. 0,1 or 0-3.",
                         reference="bad-cpus") from None
    if not cpus or min(cpus) < 0:
        raise InputError(f"--cpus {text!r} names no CPU (a range is low-high, e.g. 0-3).",
                         hint="write e.g. 0,1 or 0-3.", reference="bad-cpus")
    return tuple(sorted(cpus))


def profile(artifact: str | Path, target: Target | str, settings: LatencySettings, *,
            data: str | None = None, batch: int = 1, seed: int = 0,
            normalize: str | None = None, trust_pickle: bool = False,
            sequence_length: int | None = None) -> Profile:
    """The Profile of ``artifact`` on ``target`` (resolved; a bare name is resolved here,
    with no device): measured or estimated by the target's runner. A text encoder's
    dynamic sequence runs at the length it was exported at, or ``sequence_length`` tokens."""
    target = resolve_target(target)
    path = Path(artifact)
    entry = target.entry
    if entry.device != settings.device:
        settings = replace(settings, device=entry.device)
    threads = settings.threads or default_threads()
    session = open_checked(path, threads, trust_pickle)
    from edgepipe.model.axes import inputs_at_length

    specs = inputs_at_length(path, session.inputs, sequence_length)
    block = artifact_block(path)
    summary, graph_source = summary_for(path, trust_pickle)
    document: dict[str, Any] = {
        "schema_version": PROFILE_SCHEMA_VERSION,
        "artifact": block,
        "target": target.to_dict(),
        "settings": {**settings.to_dict(), "threads": threads, "batch": batch},
    }
    peak = ({"value": summary.peak_activation_bytes, "label": "estimated",
             "model": f"inspect's liveness plan of the graph ({graph_source}); fp32 widths"}
            if summary else {"value": None, "label": "unavailable", "why": graph_source})
    runner = target.runner
    from edgepipe.recorded import normalize_for, recorded_tokenizer, recorded_value_limits

    if data is not None and runner.needs_inputs:  # prepared as the artifact was made
        normalize = normalize_for(path, data, normalize)
    inputs = (input_batch(specs, data, batch, seed, normalize,
                          tokenizer=recorded_tokenizer(path) if data is not None else None,
                          limits=recorded_value_limits(path), artifact=path)
              if runner.needs_inputs else None)
    del session
    job = MeasureJob(artifact=path, files=tuple(path.parent / name for name in block["files"]),
                     runtime=block["runtime"], precision=block["precision"], inputs=inputs,
                     settings=settings, threads=threads, entry=entry, summary=summary,
                     graph_source=graph_source, size_block=block["size_bytes"], peak_block=peak)
    # measured: about warm-up, the steady state and the energy windows (a time bar; the
    # child process that times the artifact reports nothing while it runs)
    expected = settings.warmup_s + settings.duration_s + (
        settings.energy_idle_s + settings.energy_busy_s if settings.energy else 0.0)
    with timed(f"profile on {entry.name}", expected) if runner.needs_inputs else nullcontext():
        document.update(runner.measure(job).to_dict())
    return Profile(document)
