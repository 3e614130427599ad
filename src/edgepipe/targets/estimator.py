"""Latency and energy of a model on a target that is not attached: a per-layer roofline.

For each layer of the model's graph (from ``inspect``)::

    time = max(MACs / (efficiency x peak MAC/s at the precision),
               bytes / (bandwidth efficiency x memory bandwidth)) + overhead per op

where bytes = the layer's parameters at the precision's width + its output written and read
back once. The sum over layers is the estimate; energy is that time x the target's active
power (an assumption or datasheet figure of its catalog file). Microcontrollers use MACs x
cycles per MAC of their kernel library / clock instead.

The three constants (compute efficiency, bandwidth efficiency, per-op overhead) are fitted
on this kind of machine by ``benchmarks/estimator.py`` against measured latency of many
models, and stored with the leave-one-out error of that fit in
``targets/catalog/_estimator.yaml``; every estimate quotes that error. It says how well the
model predicts the *host*; on other targets it is unvalidated, and the estimate says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from edgepipe.analysis.summary import ModelSummary
from edgepipe.errors import TargetError
from edgepipe.targets.schema import Target

CALIBRATION = Path(__file__).parent / "catalog" / "_estimator.yaml"
BYTES_PER_ELEMENT = {"fp32": 4.0, "fp16": 2.0, "int8": 1.0}


@dataclass(frozen=True)
class Constants:
    """The fitted constants of the roofline."""

    compute_efficiency: float = 0.3
    bandwidth_efficiency: float = 0.5
    overhead_s: float = 5e-6


@lru_cache(maxsize=1)
def calibration() -> dict[str, Any]:
    """The stored calibration (constants, error, how it was measured); defaults if absent."""
    if not CALIBRATION.is_file():
        return {"constants": Constants().__dict__, "error": None,
                "how": "not calibrated: default constants"}
    return yaml.safe_load(CALIBRATION.read_text())


def layer_times(summary: ModelSummary, peak_macs: float, bandwidth: float, precision: str,
                constants: Constants) -> list[float]:
    """Estimated seconds per layer of ``summary`` (MAC/s and bytes/s given)."""
    width = BYTES_PER_ELEMENT[precision]
    times = []
    for layer in summary.layers:
        compute = layer.macs / (constants.compute_efficiency * peak_macs)
        moved = layer.params * width + 2 * layer.output_bytes * width / 4.0
        memory = moved / (constants.bandwidth_efficiency * bandwidth)
        overhead = constants.overhead_s if layer.allocates else 0.0
        times.append(max(compute, memory) + overhead)
    return times


def roofline_seconds(summary: ModelSummary, peak_macs: float, bandwidth: float,
                     precision: str, constants: Constants) -> float:
    """The whole model's estimated latency in seconds."""
    return sum(layer_times(summary, peak_macs, bandwidth, precision, constants))


def estimate(summary: ModelSummary, target: Target, precision: str) -> dict[str, Any]:
    """Latency (and energy where the target has a power figure), labelled ``estimated``."""
    precision = precision if precision in BYTES_PER_ELEMENT else "fp32"
    stored = calibration()
    if target.mcu is not None and target.mcu.cycles_per_mac_int8 is not None and \
            precision == "int8" and target.cpu is not None:
        cycles = target.mcu.cycles_per_mac_int8
        seconds = summary.total_macs * cycles.value / (target.cpu.clock_mhz.value * 1e6)
        model = (f"MACs x {cycles.value} cycles/MAC ({cycles.describe()}) / "
                 f"{target.cpu.clock_mhz.value:g} MHz clock")
        error = None
    else:
        peak = target.peak_gmacs.get(precision) or target.peak_gmacs.get("fp32")
        bandwidth = target.memory.bandwidth_gbps if target.memory else None
        if peak is None or bandwidth is None:
            raise TargetError(
                f"Target {target.name} has no peak throughput or memory bandwidth figure, "
                "so its latency cannot be estimated.",
                hint=f"add peak_gmacs and memory.bandwidth_gbps to {target.name}.yaml.",
                reference="cannot-estimate")
        constants = Constants(**stored["constants"])
        seconds = roofline_seconds(summary, peak.value * 1e9, bandwidth.value * 1e9,
                                   precision, constants)
        model = (f"per-layer roofline: max(MACs / ({constants.compute_efficiency:.3g} x "
                 f"{peak.value:g} GMAC/s {precision}), bytes / ({constants.bandwidth_efficiency:.3g}"
                 f" x {bandwidth.value:g} GB/s)) + {constants.overhead_s * 1e6:.3g} us per op")
        error = stored.get("error")
    result: dict[str, Any] = {
        "label": "estimated",
        "latency_s": seconds,
        "model": model,
        "precision": precision,
        "macs": summary.total_macs,
        "calibration": {"error": error, "how": stored.get("how"),
                        "validated_on": "host" if error else None,
                        "note": None if target.kind == "host" else
                        "the error was measured on the host; on this target the estimate is "
                        "unvalidated"},
    }
    power = target.power.active_w
    if power is not None:
        result["energy"] = {
            "label": "estimated", "joules_per_inference": seconds * power.value,
            "model": f"estimated latency x active power {power.value:g} W "
                     f"({target.name}.yaml power.active_w, {power.describe()})"}
    return result
