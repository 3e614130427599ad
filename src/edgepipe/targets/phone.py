"""A Profile from a phone over adb: benchmark_model's figures, or the agent's."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from edgepipe.errors import InputError, TargetError
from edgepipe.formats import runtime_of_suffix
from edgepipe.profiles.local import InputBatch, LatencySettings, agent_request, stage_inputs
from edgepipe.targets.adb import AdbHost, AdbRunner
from edgepipe.targets.benchmark_model import parse


def run_agent_over_adb(path: Path, files: list[Path], batch: InputBatch,
                       settings: LatencySettings, threads: int, host: AdbHost,
                       python: str) -> dict[str, Any]:
    """The agent's result from the phone (a Python with numpy and a runtime on it)."""
    with tempfile.TemporaryDirectory(prefix="edgepipe-adb-") as folder:
        names = stage_inputs(Path(folder), batch)
        request = agent_request(Path(path.name), runtime_of_suffix()[path.suffix.lower()], names,
                                settings, threads)
        return AdbRunner(host.serial).run_agent(
            [*files, *(Path(folder) / n for n in names)], request, Path(folder), python,
            settings.timeout_s)


def benchmark_model_profile(path: Path, host: AdbHost, settings: LatencySettings,
                            threads: int) -> dict[str, Any]:
    """The latency, memory, layers and energy blocks from benchmark_model on the phone."""
    if path.suffix.lower() != ".tflite":
        raise InputError(f"benchmark_model runs .tflite files; {path.name} is not one.",
                         hint="profile the .tflite export, or use the agent "
                         "(--remote-python) for other formats.", reference="not-tflite")
    binary = host.benchmark_model
    assert binary is not None
    if not binary.is_file():
        raise InputError(f"No benchmark_model binary at '{binary}'.",
                         hint="download TFLite's prebuilt android_aarch64_benchmark_model "
                         "or build it with bazel.", reference="no-benchmark-model")
    output, battery = AdbRunner(host.serial).benchmark_model(
        binary, path, threads=threads, cpus=settings.cpus, runs=settings.runs,
        duration_s=settings.duration_s, warmup_runs=settings.warmup_runs,
        op_profiling=settings.per_layer,
        energy_idle_s=settings.energy_idle_s if settings.energy else None,
        timeout_s=settings.timeout_s)
    try:
        figures = parse(output)
    except ValueError as exc:
        raise TargetError(f"benchmark_model on {host.destination} gave no timings: {exc}",
                          hint="run it by hand with `adb shell` to see why.",
                          reference="benchmark-model-failed",
                          details={"output": output[-2000:]}) from exc
    latency = {"label": "measured", "clock": "benchmark_model's own timer (microseconds)",
               "load_s": figures["load_s"], "first_inference_s": figures["first_inference_s"],
               "warmup": figures["warmup"], "steady": figures["steady"]}
    memory = {"benchmark_model": {**figures["memory"], "label": "measured", "how": (
        "benchmark_model's footprint report (it says itself that it is approximate)")}}
    runs = figures["steady"]["count"] + (figures["warmup"]["count"] or 0) + 1
    if battery is None:
        energy: dict[str, Any] = {"label": "not-requested"}
    else:
        net = battery["busy_j"] - battery["idle_w"] * battery["busy_s"]
        energy = {"label": "measured", **battery, "inferences": runs,
                  "joules_per_inference": net / runs,
                  "rule": "(busy energy - idle power x busy time) / inferences"}
    return {"latency": latency, "memory_device": memory, "layers": figures["layers"],
            "energy": energy, "runtime": {"name": "benchmark_model (TFLite)",
                                          "threads": threads, "cpus": settings.cpus},
            "device": {"via": "adb", "destination": host.destination,
                       "tool": str(host.benchmark_model)}}
