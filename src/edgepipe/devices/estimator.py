"""Latency and energy of a model on a target that is not attached: a per-layer roofline.

For each layer of the model's graph (from ``inspect``)::

    time = max(MACs / (efficiency x peak MAC/s at the precision),
               weight bytes / (factor_w x bandwidth) + activation bytes / (factor_a x
               bandwidth)) + overhead per op          (+ one overhead per call)

where weight bytes are the layer's parameters at the precision's width and activation
bytes its output written and read back once. The sum over layers is the estimate; energy is that time x the target's active
power (an assumption or datasheet figure of its catalog file). Microcontrollers use MACs x
cycles per MAC of their kernel library / clock instead.

The five constants (compute efficiency, bandwidth factors for weights and activations,
per-op and per-call overhead) are fitted
on this kind of machine by ``benchmarks/estimator.py`` against measured latency of many
models, and stored with the leave-one-out error of that fit in
``devices/catalog/_estimator.yaml``; every estimate quotes that error. It says how well the
model predicts the *host*; on other targets it is unvalidated, and the estimate says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from edgepipe.analysis.summary import ModelSummary
from edgepipe.devices.schema import DeviceEntry
from edgepipe.errors import TargetError

CALIBRATION = Path(__file__).parent / "catalog" / "_estimator.yaml"
BYTES_PER_ELEMENT = {"fp32": 4.0, "fp16": 2.0, "int8": 1.0}


@dataclass(frozen=True)
class Constants:
    """The fitted constants of the roofline.

    ``weight_bandwidth`` and ``activation_bandwidth`` scale the target's memory bandwidth
    for parameter and activation traffic: activations mostly stay in cache, so their
    factor can exceed 1. ``overhead_op_s`` is paid per kernel, ``overhead_call_s`` once per
    inference (the runtime's own call cost).
    """

    compute_efficiency: float = 0.5
    weight_bandwidth: float = 1.0
    activation_bandwidth: float = 4.0
    overhead_op_s: float = 2e-6
    overhead_call_s: float = 1e-5


@dataclass(frozen=True)
class Calibration:
    """The roofline's fitted constants, the leave-one-out error of the fit (``summary``,
    ``median_abs``, ``max_abs``, ``models``; None when not calibrated) and how it was
    measured (``_estimator.yaml``, written by ``benchmarks/estimator.py``)."""

    constants: Constants
    error: dict[str, Any] | None
    how: str
    measured: str | None = None

    @property
    def error_summary(self) -> str | None:
        """One sentence: the estimator's error on the host, or None when not calibrated."""
        return (self.error or {}).get("summary")

    def note(self, kind: str) -> dict[str, Any]:
        """The ``calibration`` block of an estimate on a device of ``kind``."""
        return {"error": self.error, "how": self.how,
                "validated_on": "host" if self.error else None,
                "note": None if kind == "host" else
                "the error was measured on the host; on this target the estimate is "
                "unvalidated"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        return cls(Constants(**data["constants"]), data.get("error"), data["how"],
                   data.get("measured"))

    def to_dict(self) -> dict[str, Any]:
        return {"how": self.how, "constants": asdict(self.constants), "error": self.error,
                **({"measured": self.measured} if self.measured else {})}


@lru_cache(maxsize=1)
def calibration() -> Calibration:
    """The stored calibration (constants, error, how it was measured); defaults if absent."""
    if not CALIBRATION.is_file():
        return Calibration(Constants(), None, "not calibrated: default constants")
    return Calibration.from_dict(yaml.safe_load(CALIBRATION.read_text()))


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy per inference as latency x power, labelled ``estimated`` with its model."""

    joules_per_inference: float
    model: str
    model_power_w: float
    model_latency_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": "estimated", "joules_per_inference": self.joules_per_inference,
                "model": self.model, "model_power_w": self.model_power_w,
                "model_latency_s": self.model_latency_s}


@dataclass(frozen=True)
class Estimate:
    """An estimated latency (and energy where the device has a power figure).

    ``latency_s`` is None when nothing could be estimated (``why`` says why). ``bound`` is
    ``"lower"`` when the latency is a lower bound (never rank it as calibrated).
    ``precision``, ``macs`` and ``calibration`` are set by :func:`estimate`.
    """

    latency_s: float | None
    model: str | None = None
    bound: str | None = None
    energy: EnergyEstimate | None = None
    why: str | None = None
    precision: str | None = None
    macs: int | None = None
    calibration: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return "unavailable" if self.latency_s is None else "estimated"

    def to_dict(self) -> dict[str, Any]:
        if self.latency_s is None:
            out: dict[str, Any] = {"label": "unavailable", "why": self.why}
        else:
            out = {"label": "estimated", "latency_s": self.latency_s, "model": self.model}
            if self.bound:
                out["bound"] = self.bound
            if self.energy is not None:
                out["energy"] = self.energy.to_dict()
        if self.precision is not None:
            out.update(precision=self.precision, macs=self.macs, calibration=self.calibration)
        return out


def layer_arrays(summary: ModelSummary, precision: str) -> tuple[np.ndarray, ...]:
    """Per layer: MACs, parameter bytes, activation bytes (output written and read back)
    and 1 for ops that run a kernel (views and in-place ops cost no overhead)."""
    width = BYTES_PER_ELEMENT[precision]
    layers = summary.layers
    macs = np.array([layer.macs for layer in layers], dtype=np.float64)
    weights = np.array([layer.params * width for layer in layers], dtype=np.float64)
    activations = np.array([2 * layer.output_bytes * width / 4.0 for layer in layers],
                           dtype=np.float64)
    ops = np.array([1.0 if layer.allocates else 0.0 for layer in layers])
    return macs, weights, activations, ops


def roofline_layers(arrays: tuple[np.ndarray, ...], peak_macs: float, bandwidth: float,
                    constants: Constants) -> np.ndarray:
    """Estimated seconds of each layer (MAC/s and bytes/s given); no per-call overhead."""
    macs, weights, activations, ops = arrays
    compute = macs / (constants.compute_efficiency * peak_macs)
    memory = (weights / (constants.weight_bandwidth * bandwidth)
              + activations / (constants.activation_bandwidth * bandwidth))
    return np.maximum(compute, memory) + constants.overhead_op_s * ops


def roofline_seconds(arrays: tuple[np.ndarray, ...], peak_macs: float, bandwidth: float,
                     constants: Constants) -> float:
    """The whole model's estimated latency in seconds (MAC/s and bytes/s given)."""
    return float(np.sum(roofline_layers(arrays, peak_macs, bandwidth, constants))
                 + constants.overhead_call_s)


def per_layer_seconds(summary: ModelSummary, target: DeviceEntry, precision: str) -> np.ndarray:
    """Estimated seconds of each layer of ``summary`` on ``target`` (see :func:`estimate`)."""
    precision = precision if precision in BYTES_PER_ELEMENT else "fp32"
    macs = np.array([layer.macs for layer in summary.layers], dtype=np.float64)
    if target.kind == "mcu" and target.mcu is not None and target.cpu is not None:
        cycles = target.mcu.cycles_per_mac_int8
        if precision == "int8" and cycles is not None:
            return macs * cycles.value / (target.cpu.clock_mhz.value * 1e6)
        rate = "int8" if precision == "int8" and "int8" in target.peak_gmacs else "fp32"
        return macs / (target.peak_gmacs[rate].value * 1e9)
    peak, bandwidth, constants = _roofline_figures(target, precision)
    return roofline_layers(layer_arrays(summary, precision), peak * 1e9, bandwidth * 1e9,
                           constants)


def _roofline_figures(target: DeviceEntry, precision: str) -> tuple[float, float, Constants]:
    peak = target.peak_gmacs.get(precision) or target.peak_gmacs.get("fp32")
    bandwidth = target.memory.bandwidth_gbps if target.memory else None
    if peak is None or bandwidth is None:
        raise TargetError(
            f"Target {target.name} has no peak throughput or memory bandwidth figure, "
            "so its latency cannot be estimated.",
            hint=f"add peak_gmacs and memory.bandwidth_gbps to {target.name}.yaml.",
            reference="cannot-estimate")
    constants = calibration().constants
    if target.kind != "host" and constants.compute_efficiency > 1:
        # Above 1 on the host means its clock figure undercounts boost clocks; a catalog
        # target's peak is its rated maximum, so it is not exceeded there.
        constants = replace(constants, compute_efficiency=1.0)
    return peak.value, bandwidth.value, constants


def estimate(summary: ModelSummary, target: DeviceEntry, precision: str) -> Estimate:
    """Latency (and energy where the target has a power figure), labelled ``estimated``."""
    precision = precision if precision in BYTES_PER_ELEMENT else "fp32"
    if target.kind == "mcu" and target.mcu is not None:
        return replace(mcu_estimate(target, summary.total_macs, precision), precision=precision,
                       macs=summary.total_macs, calibration={
                           "error": None, "how": None, "validated_on": None,
                           "note": "cycles per MAC of the kernel library; not checked on a "
                                   "board"})
    peak, bandwidth, constants = _roofline_figures(target, precision)
    seconds = roofline_seconds(layer_arrays(summary, precision), peak * 1e9, bandwidth * 1e9,
                               constants)
    model = (f"per-layer roofline: max(MACs / ({constants.compute_efficiency:.3g} x "
             f"{peak:g} GMAC/s {precision}), weight bytes / "
             f"({constants.weight_bandwidth:.3g} x {bandwidth:g} GB/s) + activation bytes / "
             f"({constants.activation_bandwidth:.3g} x {bandwidth:g} GB/s)) + "
             f"{constants.overhead_op_s * 1e6:.3g} us per op"
             + (f" + {constants.overhead_call_s * 1e6:.3g} us per call"
                if constants.overhead_call_s >= 5e-8 else ""))
    power = target.power.active_w
    energy = None if power is None else estimate_energy(
        seconds, power.value, f"estimated latency x active power {power.value:g} W "
        f"({target.name}.yaml power.active_w, {power.describe()})")
    return Estimate(latency_s=seconds, model=model, energy=energy, precision=precision,
                    macs=summary.total_macs, calibration=calibration().note(target.kind))


def mcu_estimate(target: DeviceEntry, macs: int, precision: str) -> Estimate:
    """Latency and energy from MACs, labelled estimated with the model named."""
    assert target.cpu is not None and target.mcu is not None
    clock = target.cpu.clock_mhz.value * 1e6
    cycles = target.mcu.cycles_per_mac_int8
    if precision == "int8" and cycles is not None:
        seconds = macs * cycles.value / clock
        model = (f"{macs:,} MACs x {cycles.value} cycles/MAC ({cycles.describe()}) / "
                 f"{clock / 1e6:g} MHz")
        bound = None
    else:
        # int8 without a cycles-per-MAC figure: the int8 peak (the kernel library's
        # instructions at one per cycle); float, or no int8 peak: the fp32 peak
        rate = "int8" if precision == "int8" and "int8" in target.peak_gmacs else "fp32"
        peak = target.peak_gmacs.get(rate)
        if peak is None:
            return Estimate(latency_s=None, why=f"{target.name} has no {rate} MAC rate")
        seconds = macs / (peak.value * 1e9)
        kernels = ("the int8 kernels run below peak" if rate == "int8" else
                   "the reference float kernels run below peak")
        model = (f"{macs:,} MACs / peak {rate} {peak.value:g} GMAC/s ({peak.describe()}); "
                 f"a lower bound: {kernels}")
        bound = "lower"  # the true latency is at least this: never rank it as calibrated
    power = target.power.active_w
    energy = None if power is None else estimate_energy(seconds, power.value, (
        f"estimated latency x active power {power.value:g} W ({power.describe()})"))
    return Estimate(latency_s=seconds, model=model, bound=bound, energy=energy)


def estimate_energy(latency_s: float, power_w: float, model: str) -> EnergyEstimate:
    """Latency x power, labelled ``estimated`` with the power model named."""
    return EnergyEstimate(latency_s * power_w, model, power_w, latency_s)
