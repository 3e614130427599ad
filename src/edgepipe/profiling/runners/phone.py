"""The runners for a phone over adb: the agent with a Python on the phone, or TFLite's
``benchmark_model`` (see :mod:`edgepipe.profiling.runners.adb` for the adb client)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgepipe.errors import InputError, TargetError
from edgepipe.profiling.agent import AGENT_DIR, AGENT_FILES
from edgepipe.profiling.runner import MeasureJob, ToolMeasurement
from edgepipe.profiling.runners.adb import AdbClient, AdbHost
from edgepipe.profiling.runners.agent_runner import (
    AgentRequest,
    AgentResult,
    RemoteAgentRunner,
    parse_agent_output,
)
from edgepipe.profiling.runners.benchmark_model import parse


class AdbAgentRunner(RemoteAgentRunner):
    """The profiling agent with a Python on the phone (e.g. Termux's, with numpy and a
    runtime)."""

    via = "adb"

    def __init__(self, host: AdbHost, remote_python: str = "python3") -> None:
        self.host = host
        self.remote_python = remote_python

    def device_record(self) -> dict[str, Any]:
        return {"via": "adb", "destination": self.host.destination,
                "python": self.remote_python}

    def describe(self) -> str:
        return f"measured over adb on {self.host.destination} ({self.remote_python})"

    def run_remote(self, files: list[Path], request: AgentRequest, folder: Path,
                   timeout_s: float) -> AgentResult:
        client = AdbClient(self.host.serial)
        with client.remote_folder() as remote:
            request = request.placed(remote)
            request_path = request.write(folder)
            for path in [*(AGENT_DIR / n for n in AGENT_FILES), *files, request_path]:
                client.adb("push", str(path), f"{remote}/{path.name}", timeout_s=timeout_s)
            out = client.adb("shell", f"cd {remote} && {self.remote_python} agent.py "
                             "request.json", timeout_s=timeout_s)
        return parse_agent_output(out, "", 0, Path(request.artifact))


class BenchmarkModelRunner:
    """TFLite's ``benchmark_model`` binary on the phone: its latency, memory and per-op
    figures, and energy from the battery's fuel gauge."""

    via = "adb"
    needs_inputs = False

    def __init__(self, host: AdbHost) -> None:
        assert host.benchmark_model is not None
        self.host = host
        self.binary: Path = host.benchmark_model

    def describe(self) -> str:
        return f"measured over adb on {self.host.destination} with {self.binary.name}"

    def measure(self, job: MeasureJob) -> ToolMeasurement:
        path = job.artifact
        if path.suffix.lower() != ".tflite":
            raise InputError(f"benchmark_model runs .tflite files; {path.name} is not one.",
                             hint="profile the .tflite export, or use the agent "
                             "(--remote-python) for other formats.", reference="not-tflite")
        if not self.binary.is_file():
            raise InputError(f"No benchmark_model binary at '{self.binary}'.",
                             hint="download TFLite's prebuilt android_aarch64_benchmark_model "
                             "or build it with bazel.", reference="no-benchmark-model")
        output, battery = AdbClient(self.host.serial).benchmark_model(
            self.binary, path, job.settings, job.threads)
        try:
            figures = parse(output)
        except ValueError as exc:
            raise TargetError(f"benchmark_model on {self.host.destination} gave no timings: "
                              f"{exc}", hint="run it by hand with `adb shell` to see why.",
                              reference="benchmark-model-failed",
                              details={"output": output[-2000:]}) from exc
        latency = {"label": "measured", "clock": "benchmark_model's own timer (microseconds)",
                   "load_s": figures.load_s, "first_inference_s": figures.first_inference_s,
                   "warmup": figures.warmup, "steady": figures.steady}
        memory = {"artifact_size_bytes": job.size_block, "peak_activation_bytes": job.peak_block,
                  "benchmark_model": {**figures.memory, "label": "measured", "how": (
                      "benchmark_model's footprint report (it says itself that it is "
                      "approximate)")}}
        runs = figures.steady["count"] + (figures.warmup["count"] or 0) + 1
        energy = ({"label": "not-requested"} if battery is None
                  else battery.per_inference(runs))
        return ToolMeasurement(
            memory=memory, latency=latency, layers=figures.layers, energy=energy,
            runtime={"name": "benchmark_model (TFLite)", "threads": job.threads,
                     "cpus": job.settings.cpus},
            device={"via": "adb", "destination": self.host.destination,
                    "tool": str(self.binary)})
