"""Profile an artifact on this machine: the agent in a fresh process, its JSON brought back.

The agent (:mod:`edgepipe.profiles.agent`) runs with this interpreter in a child process,
so the peak memory it reports is the inference's and not edgepipe's imports; inputs travel
as ``.npy`` files in a temporary folder, removed afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.errors import EdgepipeError, InputError
from edgepipe.formats import runtime_of_suffix

AGENT = Path(__file__).with_name("agent.py")


@dataclass(frozen=True)
class LatencySettings:
    """How long to time: steady state ends when both ``runs`` and ``duration_s`` are reached."""

    runs: int = 100
    duration_s: float = 3.0
    warmup_runs: int = 10
    warmup_s: float = 0.5
    threads: int | None = None
    cpus: tuple[int, ...] | None = None
    per_layer: bool = True
    layer_runs: int = 20
    energy: bool = True
    energy_idle_s: float = 2.0
    energy_busy_s: float = 3.0
    device: str = "cpu"
    precision: str = "fp32"
    timeout_s: float = 900.0

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise InputError(f"--runs {self.runs}: at least one timed run is needed.",
                             hint="give --runs 1 or more (and --duration for a time floor).",
                             reference="bad-runs")
        if self.duration_s < 0 or self.warmup_runs < 0 or self.warmup_s < 0:
            raise InputError("--duration and --warmup cannot be negative.",
                             hint="give 0 or more.", reference="bad-runs")
        if self.precision not in ("fp32", "fp16"):
            raise InputError(f"--precision {self.precision}: fp32 or fp16.",
                             hint="fp16 casts a torch program as it loads.",
                             reference="bad-precision")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads {self.threads} must be at least 1.",
                             hint="leave it out to use every usable core.",
                             reference="bad-threads")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InputBatch:
    """The arrays the agent binds, and where they came from (real data or seeded random)."""

    arrays: list[np.ndarray]
    kind: str  # "data" | "random"
    description: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "description": self.description,
                "shapes": [list(a.shape) for a in self.arrays],
                "dtypes": [a.dtype.name for a in self.arrays]}


def agent_request(artifact: Path, runtime: str, inputs: list[str],
                  settings: LatencySettings, threads: int) -> dict[str, Any]:
    """The JSON request the agent reads (paths as the agent will see them)."""
    return {"artifact": str(artifact), "runtime": runtime, "inputs": inputs,
            "threads": threads, "cpus": list(settings.cpus) if settings.cpus else None,
            "runs": settings.runs, "duration_s": settings.duration_s,
            "warmup_runs": settings.warmup_runs, "warmup_s": settings.warmup_s,
            "per_layer": settings.per_layer, "layer_runs": settings.layer_runs,
            "device": settings.device, "precision": settings.precision,
            "energy": {"idle_s": settings.energy_idle_s, "min_busy_s": settings.energy_busy_s,
                       "device": settings.device} if settings.energy else None}


def stage_inputs(folder: Path, batch: InputBatch) -> list[str]:
    """Write one ``.npy`` per input into ``folder``; their file names."""
    names = []
    for i, array in enumerate(batch.arrays):
        np.save(folder / f"input_{i}.npy", array)
        names.append(f"input_{i}.npy")
    return names


def run_agent_locally(artifact: Path, batch: InputBatch, settings: LatencySettings,
                      threads: int) -> dict[str, Any]:
    """The agent's result for ``artifact`` run in a child process of this interpreter."""
    runtime = runtime_of_suffix()[artifact.suffix.lower()]
    with tempfile.TemporaryDirectory(prefix="edgepipe-profile-") as folder:
        paths = [str(Path(folder) / name) for name in stage_inputs(Path(folder), batch)]
        request = agent_request(artifact.resolve(), runtime, paths, settings, threads)
        request_path = Path(folder) / "request.json"
        request_path.write_text(json.dumps(request))
        try:
            done = subprocess.run([sys.executable, str(AGENT), str(request_path)],
                                  capture_output=True, text=True, timeout=settings.timeout_s,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise EdgepipeError(
                f"Profiling {artifact.name} took longer than {settings.timeout_s:.0f} s.",
                hint="lower --runs or --duration, or check that the model runs at all with "
                "`edgepipe eval`.", reference="profile-timeout") from exc
    return parse_agent_output(done.stdout, done.stderr, done.returncode, artifact)


def parse_agent_output(stdout: str, stderr: str, code: int, artifact: Path) -> dict[str, Any]:
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
    return result
