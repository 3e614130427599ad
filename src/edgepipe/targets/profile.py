"""``profile ARTIFACT --target T``: measured here or on a device, estimated for the others.

``host`` (and any ``reach: local`` target) runs the profiling agent here; with
``--host ssh://...`` it runs on that device (:mod:`edgepipe.targets.ssh`). Any other target
gets the estimator's figures, labelled ``estimated`` with the model named and its measured
error.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.errors import InputError
from edgepipe.formats import by_suffix, runtime_of_suffix
from edgepipe.profiles.energy import estimate_energy
from edgepipe.profiles.graph import artifact_record, summary_for
from edgepipe.profiles.local import (
    InputBatch,
    LatencySettings,
    agent_request,
    run_agent_locally,
    stage_inputs,
)
from edgepipe.runtime import default_threads, open_artifact
from edgepipe.targets.adb import AdbHost
from edgepipe.targets.catalog import get_target
from edgepipe.targets.estimator import estimate
from edgepipe.targets.schema import Target
from edgepipe.targets.ssh import SshHost, SshRunner

PROFILE_SCHEMA_VERSION = 1


def input_batch(session_inputs: list[Any], data: str | None, batch: int, seed: int,
                normalize: str | None = None) -> InputBatch:
    """Real samples from ``data`` (the first ``batch``) or seeded random arrays."""
    for spec in session_inputs:
        if spec.shape and isinstance(spec.shape[0], int) and spec.shape[0] != batch:
            raise InputError(
                f"Input {spec.name!r} has a fixed batch of {spec.shape[0]}; --batch {batch} "
                "was asked for.", hint=f"use --batch {spec.shape[0]}, or export with a dynamic "
                "batch (`edgepipe export ... --dynamic-batch`).", reference="fixed-batch")
    specs = [s.with_shape(s.concrete_shape(batch)) for s in session_inputs]
    if data is None:
        arrays = [s.sample(batch, seed + i) for i, s in enumerate(specs)]
        return InputBatch(arrays, "random", f"seeded random (seed {seed}): N(0,1) floats, "
                          "integers in [0, 100)")
    from edgepipe.data import load_data_for_model

    dataset = load_data_for_model(data, specs, normalize=normalize)
    count = len(next(iter(dataset.inputs.values())))
    if count < batch:
        raise InputError(f"--data {data} has {count} samples; the batch is {batch}.",
                         hint="lower --batch or give more data.", reference="data-too-small")
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
    record = artifact_record(path) or {}
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


def run_over_ssh(path: Path, files: list[Path], batch: InputBatch, settings: LatencySettings,
                 threads: int, host: SshHost, remote_python: str) -> dict[str, Any]:
    """The agent's result from the device behind ``host``."""
    with tempfile.TemporaryDirectory(prefix="edgepipe-ssh-") as folder:
        names = stage_inputs(Path(folder), batch)
        request = agent_request(Path(path.name), runtime_of_suffix()[path.suffix.lower()], names,
                                settings, threads)
        runner = SshRunner(host, remote_python)
        return runner.run_agent([*files, *(Path(folder) / n for n in names)], request,
                                Path(folder), settings.timeout_s)


def device_host(url: str | None, *, benchmark_model: Path | None = None,
                **ssh_options: Any) -> SshHost | AdbHost | None:
    """The device behind a ``--host`` URL: ``adb://SERIAL`` (a phone; ``benchmark_model``
    is TFLite's binary to run there) or ``ssh://user@host[:port]`` (``ssh_options``: the
    identity and config of :func:`edgepipe.targets.ssh.parse_host`); None for no URL."""
    if url is None:
        return None
    if url.startswith("adb://"):
        from edgepipe.targets.adb import parse_serial

        return AdbHost(parse_serial(url), benchmark_model)
    from edgepipe.targets.ssh import parse_host

    return parse_host(url, **ssh_options)


def profile(artifact: str | Path, target_name: str, settings: LatencySettings, *,
            data: str | None = None, batch: int = 1, seed: int = 0,
            normalize: str | None = None, host: SshHost | AdbHost | None = None,
            remote_python: str = "python3", trust_pickle: bool = False) -> dict[str, Any]:
    """The Profile document of ``artifact`` on ``target_name``: measured here (``host``
    target), on the device behind ``host`` (SSH), else estimated."""
    path = Path(artifact)
    target = get_target(target_name)
    if target.device != settings.device:
        settings = replace(settings, device=target.device)
    threads = settings.threads or default_threads()
    session = open_checked(path, threads, trust_pickle)
    block = artifact_block(path)
    summary, graph_source = summary_for(path, trust_pickle)
    document: dict[str, Any] = {
        "schema_version": PROFILE_SCHEMA_VERSION,
        "artifact": block,
        "target": {"name": target.name, "title": target.title, "reach": target.reach},
        "settings": {**settings.to_dict(), "threads": threads, "batch": batch},
    }
    peak = ({"value": summary.peak_activation_bytes, "label": "estimated",
             "model": f"inspect's liveness plan of the graph ({graph_source}); fp32 widths"}
            if summary else {"value": None, "label": "unavailable", "why": graph_source})
    if isinstance(host, AdbHost) and host.benchmark_model is not None:
        from edgepipe.targets.phone import benchmark_model_profile

        found = benchmark_model_profile(path, host, settings, threads)
        memory = {"artifact_size_bytes": block["size_bytes"], "peak_activation_bytes": peak,
                  **found.pop("memory_device")}
        document.update(mode="measured", memory=memory, **found)
        return document
    if target.reach == "local" or host is not None:
        batch_arrays = input_batch(session.inputs, data, batch, seed, normalize)
        del session
        if isinstance(host, AdbHost):
            from edgepipe.targets.phone import run_agent_over_adb

            files = [path.parent / name for name in block["files"]]
            measured = run_agent_over_adb(path, files, batch_arrays, settings, threads,
                                          host, remote_python)
            document["device"] = {"via": "adb", "destination": host.destination,
                                  "python": remote_python}
        elif host is not None:
            files = [path.parent / name for name in block["files"]]
            measured = run_over_ssh(path, files, batch_arrays, settings, threads, host,
                                    remote_python)
            document["device"] = {"via": "ssh", "destination": host.destination,
                                  "port": host.port, "python": remote_python}
        else:
            measured = run_agent_locally(path, batch_arrays, settings, threads)
        document.update(mode="measured", inputs=batch_arrays.to_dict(),
                        identity=measured["identity"], runtime=measured["runtime"],
                        device_state=measured.get("device_state"),
                        latency=latency_block(measured),
                        layers=measured.get("layers"),
                        memory=memory_block(block, measured, peak),
                        energy=energy_block(measured.get("energy"), target,
                                            measured["latency"]["p50_s"]))
        return document
    document.update(mode="estimated", reason=(
        f"{target.name} is reached over {target.reach}; no device was given, so every "
        "figure is the estimator's"))
    if summary is None:
        raise InputError(f"Cannot estimate {path.name} on {target.name}: {graph_source}.",
                         hint="profile the ONNX artifact of the same model, or export with "
                         "edgepipe so manifest.json names the source.",
                         reference="no-graph-for-estimate")
    estimated = estimate(summary, target, block["precision"] or "fp32")
    document.update(latency={"label": "estimated", "steady": {
        "p50_s": estimated["latency_s"]}, "model": estimated["model"],
        "calibration": estimated["calibration"],
        **({"bound": estimated["bound"]} if "bound" in estimated else {})},
        memory={"artifact_size_bytes": block["size_bytes"], "peak_activation_bytes": peak},
        energy=estimated.get("energy") or {"label": "unavailable", "why": (
            f"{target.name}.yaml has no active power figure")})
    return document


def latency_block(measured: dict[str, Any]) -> dict[str, Any]:
    block = {"label": "measured",
             "clock": "time.perf_counter around the runtime's run call, inputs bound once",
             "load_s": measured["load_s"], "first_inference_s": measured["first_inference_s"],
             "warmup": measured["warmup"], "steady": measured["latency"]}
    if "runtime_latency" in measured:
        block["runtime_reported"] = measured["runtime_latency"]
    return block


def memory_block(artifact: dict[str, Any], measured: dict[str, Any],
                 peak: dict[str, Any]) -> dict[str, Any]:
    memory = measured["memory"]
    return {
        "artifact_size_bytes": artifact["size_bytes"],
        "peak_rss_bytes": {"value": memory["peak_rss_bytes"], "label": "measured",
                           "how": memory["method"]},
        "peak_rss_increase_bytes": {"value": memory["peak_rss_increase_bytes"],
                                    "label": "measured",
                                    "how": "peak RSS minus RSS after the runtime's imports"},
        "rss_after_imports_bytes": memory["rss_after_imports_bytes"],
        "runtime_arena_bytes": {"value": None, "label": "unavailable", "why": (
            f"{artifact['runtime']} exposes no arena size; TFLite Micro's is in "
            "`edgepipe targets check`")},
        "peak_activation_bytes": peak,
    }


def energy_block(measured: dict[str, Any] | None, target: Target,
                 p50_s: float) -> dict[str, Any]:
    """The agent's measured energy; else an estimate from the target's power model and the
    measured latency, labelled so, with why nothing was measured."""
    if measured is None:
        return {"label": "not-requested"}
    if measured.get("label") == "measured":
        return measured
    why = measured.get("why", "no readable energy sensor")
    power = target.power.active_w
    if power is None:
        return {**measured, "label": "unavailable",
                "why": f"{why}; {target.name} has no power model to estimate from"}
    return {**estimate_energy(p50_s, power.value, (
        f"measured p50 latency x active power {power.value:g} W ({target.name} "
        f"power.active_w, {power.describe()})")), "not_measured_because": why,
        "problems": measured.get("problems", [])}
