"""The one protocol every runner follows, and what goes in and out of it.

A :class:`Runner` measures (or estimates) one artifact on one device: here, on this machine's
GPU, over ssh, over adb, or with the roofline estimator for a device not reached. The profile
verb (:mod:`edgepipe.profiling.profile`) builds a :class:`MeasureJob` (the artifact, the inputs
when the runner runs the model, the settings), calls ``runner.measure(job)`` and writes the
:class:`Measurement` it gets into the Profile document; it never asks which runner it holds.

Runners live in :mod:`edgepipe.profiling.runners`: ``local`` (here and CUDA), ``ssh``,
``adb`` (the agent with a Python on the phone, or TFLite's benchmark_model) and
``estimated``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np

from edgepipe.errors import InputError

if TYPE_CHECKING:
    from edgepipe.analysis.summary import ModelSummary
    from edgepipe.devices.schema import DeviceEntry

Via = Literal["here", "cuda", "ssh", "adb", "estimated"]
Json = Any  # a JSON value: a block of the Profile document, written as it is


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


@dataclass(frozen=True)
class MeasureJob:
    """Everything a runner is given.

    ``files``: the artifact's files, main file first (an IR's ``.bin``, external ONNX data).
    ``inputs``: the batch to bind, present when the runner's ``needs_inputs`` is True.
    ``threads``: the runtime threads (the settings' or every usable core). ``entry``: the
    device's catalog entry (its power model estimates energy that was not measured).
    ``summary``/``graph_source``: inspect's graph of the model, or None and why not.
    ``size_block``/``peak_block``: the artifact's size on disk and its estimated peak
    activations, as the Profile document writes them.
    """

    artifact: Path
    files: tuple[Path, ...]
    runtime: str
    precision: str | None
    inputs: InputBatch | None
    settings: LatencySettings
    threads: int
    entry: DeviceEntry
    summary: ModelSummary | None
    graph_source: str
    size_block: Json
    peak_block: Json


class Measurement:
    """What a runner returns: the Profile document's blocks after ``artifact``, ``target``
    and ``settings``. ``to_dict`` writes them in the document's order."""

    mode: ClassVar[str]
    fields: ClassVar[tuple[str, ...]]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.fields:
            value = getattr(self, name)
            if name == "device" and value is None:
                continue
            out[name] = value
        return out


@dataclass(frozen=True)
class DeviceMeasurement(Measurement):
    """Figures measured by something that ran the artifact: the runtime it ran in, its
    latency, per-layer times, memory and energy, and where it ran (``device``: None here)."""

    mode: ClassVar[str] = "measured"
    runtime: Json
    latency: Json
    layers: Json
    memory: Json
    energy: Json
    device: Json


@dataclass(frozen=True)
class ToolMeasurement(DeviceMeasurement):
    """A device tool's own figures (TFLite's benchmark_model on a phone)."""

    fields: ClassVar[tuple[str, ...]] = ("mode", "memory", "latency", "layers", "energy",
                                         "runtime", "device")


@dataclass(frozen=True)
class AgentMeasurement(DeviceMeasurement):
    """The profiling agent's figures (here, CUDA, ssh, adb with a Python on the phone), with
    the inputs it bound, the identity of the machine and its thermal state around the run."""

    fields: ClassVar[tuple[str, ...]] = ("device", "mode", "inputs", "identity", "runtime",
                                         "device_state", "latency", "layers", "memory",
                                         "energy")
    inputs: Json
    identity: Json
    device_state: Json


@dataclass(frozen=True)
class EstimatedMeasurement(Measurement):
    """The estimator's figures for a device not reached, labelled ``estimated``."""

    mode: ClassVar[str] = "estimated"
    fields: ClassVar[tuple[str, ...]] = ("mode", "reason", "latency", "memory", "energy")
    reason: str
    latency: Json
    memory: Json
    energy: Json


@runtime_checkable
class Runner(Protocol):
    """How a resolved target is measured. ``via`` says how the device is reached;
    ``needs_inputs`` whether the job must carry an input batch (runners that run the model
    themselves through the agent); ``describe`` is one line for people."""

    via: Via
    needs_inputs: bool

    def measure(self, job: MeasureJob) -> Measurement: ...

    def describe(self) -> str: ...
