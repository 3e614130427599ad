"""What every runner that runs the profiling agent shares (here, CUDA, ssh, adb + Python).

The agent (:mod:`edgepipe.profiling.agent.agent`) reads an :class:`AgentRequest` and prints
one JSON document; :class:`AgentRunner` turns that document into the Profile's latency,
memory and energy blocks. A subclass only says how the agent is run
(:meth:`AgentRunner.run_agent`); a remote one (:class:`RemoteAgentRunner`) only how the
files are copied and the agent started on the device (:meth:`RemoteAgentRunner.run_remote`).
"""

from __future__ import annotations

import json
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.devices.estimator import estimate_energy
from edgepipe.devices.schema import DeviceEntry
from edgepipe.errors import EdgepipeError
from edgepipe.profiling.runner import AgentMeasurement, InputBatch, LatencySettings, MeasureJob


@dataclass(frozen=True)
class AgentResult:
    """The agent's JSON document, read once (written by ``profile`` in agent.py).

    ``latency``: the steady-state statistics (count, mean_s, std_s, min_s, p50_s ... max_s,
    raw_s); ``runtime_latency``: the runtime's own timer where it has one; ``memory``:
    RSS after imports, peak and how it was read; ``energy`` and ``layers`` when asked for.
    """

    identity: dict[str, Any]
    runtime: dict[str, Any]
    device_state: dict[str, Any] | None
    load_s: float
    first_inference_s: float
    warmup: dict[str, Any]
    latency: dict[str, Any]
    memory: dict[str, Any]
    runtime_latency: dict[str, Any] | None = None
    energy: dict[str, Any] | None = None
    layers: dict[str, Any] | None = None
    agent_version: int = 1

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentResult:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class AgentRequest:
    """The request the agent reads (paths as the agent will see them)."""

    artifact: str
    runtime: str
    inputs: tuple[str, ...]
    settings: LatencySettings
    threads: int

    def placed(self, folder: str) -> AgentRequest:
        """The same request with the artifact and inputs under ``folder`` on the device."""
        return replace(self, artifact=f"{folder}/{self.artifact}",
                       inputs=tuple(f"{folder}/{name}" for name in self.inputs))

    def to_dict(self) -> dict[str, Any]:
        settings = self.settings
        return {"artifact": self.artifact, "runtime": self.runtime, "inputs": list(self.inputs),
                "threads": self.threads, "cpus": list(settings.cpus) if settings.cpus else None,
                "runs": settings.runs, "duration_s": settings.duration_s,
                "warmup_runs": settings.warmup_runs, "warmup_s": settings.warmup_s,
                "per_layer": settings.per_layer, "layer_runs": settings.layer_runs,
                "device": settings.device, "precision": settings.precision,
                "energy": {"idle_s": settings.energy_idle_s,
                           "min_busy_s": settings.energy_busy_s,
                           "device": settings.device} if settings.energy else None}

    def write(self, folder: Path) -> Path:
        """``request.json`` in ``folder``."""
        path = folder / "request.json"
        path.write_text(json.dumps(self.to_dict()))
        return path


def stage_inputs(folder: Path, batch: InputBatch) -> list[str]:
    """Write one ``.npy`` per input into ``folder``; their file names."""
    names = []
    for i, array in enumerate(batch.arrays):
        np.save(folder / f"input_{i}.npy", array)
        names.append(f"input_{i}.npy")
    return names


def parse_agent_output(stdout: str, stderr: str, code: int, artifact: Path) -> AgentResult:
    """The agent's JSON, or an error saying what went wrong (its stderr tail included)."""
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if code != 0 or not lines:
        tail = "\n".join(stderr.strip().splitlines()[-8:])
        raise EdgepipeError(
            f"The profiling agent failed on {artifact.name} (exit {code}):\n{tail}",
            hint="check that the artifact loads with `edgepipe eval` and that the runtime "
            "is installed; rerun with --debug.", reference="agent-failed")
    result = json.loads(lines[-1])
    if "error" in result:
        error = result["error"]
        raise EdgepipeError(error["message"], hint=error["hint"], reference=error["reference"])
    return AgentResult.from_dict(result)


class AgentRunner(ABC):
    """A runner whose figures come from the profiling agent."""

    via: str
    needs_inputs = True

    @abstractmethod
    def run_agent(self, job: MeasureJob) -> AgentResult:
        """The agent's JSON for ``job``."""

    def device_record(self) -> dict[str, Any] | None:
        """The Profile's ``device`` block (where the agent ran), None when here."""
        return None

    def measure(self, job: MeasureJob) -> AgentMeasurement:
        measured = self.run_agent(job)
        assert job.inputs is not None
        return AgentMeasurement(
            device=self.device_record(), inputs=job.inputs.to_dict(),
            identity=measured.identity, runtime=measured.runtime,
            device_state=measured.device_state, latency=latency_block(measured),
            layers=measured.layers, memory=memory_block(job, measured),
            energy=energy_block(measured.energy, job.entry, measured.latency["p50_s"]))


class RemoteAgentRunner(AgentRunner):
    """An agent runner for a device: inputs staged in a temporary folder here, copied
    with the agent and the artifact's files, the agent run there."""

    remote_python: str = "python3"

    @abstractmethod
    def run_remote(self, files: list[Path], request: AgentRequest, folder: Path,
                   timeout_s: float) -> AgentResult:
        """Copy ``files`` and the agent to the device, run ``request`` (paths relative to
        the remote folder), bring the agent's JSON back and remove the remote folder."""

    def run_agent(self, job: MeasureJob) -> AgentResult:
        assert job.inputs is not None
        with tempfile.TemporaryDirectory(prefix=f"edgepipe-{self.via}-") as name:
            folder = Path(name)
            names = stage_inputs(folder, job.inputs)
            request = AgentRequest(job.artifact.name, job.runtime, tuple(names), job.settings,
                                   job.threads)
            return self.run_remote([*job.files, *(folder / n for n in names)], request,
                                   folder, job.settings.timeout_s)


def latency_block(measured: AgentResult) -> dict[str, Any]:
    block = {"label": "measured",
             "clock": "time.perf_counter around the runtime's run call, inputs bound once",
             "load_s": measured.load_s, "first_inference_s": measured.first_inference_s,
             "warmup": measured.warmup, "steady": measured.latency}
    if measured.runtime_latency is not None:
        block["runtime_reported"] = measured.runtime_latency
    return block


def memory_block(job: MeasureJob, measured: AgentResult) -> dict[str, Any]:
    memory = measured.memory
    return {
        "artifact_size_bytes": job.size_block,
        "peak_rss_bytes": {"value": memory["peak_rss_bytes"], "label": "measured",
                           "how": memory["method"]},
        "peak_rss_increase_bytes": {"value": memory["peak_rss_increase_bytes"],
                                    "label": "measured",
                                    "how": "peak RSS minus RSS after the runtime's imports"},
        "rss_after_imports_bytes": memory["rss_after_imports_bytes"],
        "runtime_arena_bytes": {"value": None, "label": "unavailable", "why": (
            f"{job.runtime} exposes no arena size; TFLite Micro's is in "
            "`edgepipe targets check`")},
        "peak_activation_bytes": job.peak_block,
    }


def energy_block(measured: dict[str, Any] | None, entry: DeviceEntry,
                 p50_s: float) -> dict[str, Any]:
    """The agent's measured energy; else an estimate from the device's power model and the
    measured latency, labelled so, with why nothing was measured."""
    if measured is None:
        return {"label": "not-requested"}
    if measured.get("label") == "measured":
        return measured
    why = measured.get("why", "no readable energy sensor")
    power = entry.power.active_w
    if power is None:
        return {**measured, "label": "unavailable",
                "why": f"{why}; {entry.name} has no power model to estimate from"}
    return {**estimate_energy(p50_s, power.value, (
        f"measured p50 latency x active power {power.value:g} W ({entry.name} "
        f"power.active_w, {power.describe()})")).to_dict(), "not_measured_because": why,
        "problems": measured.get("problems", [])}
