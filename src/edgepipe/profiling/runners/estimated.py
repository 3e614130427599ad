"""The runner for a device that is not reached: the roofline estimator's figures, each
labelled ``estimated`` with its model and its measured error (see
:mod:`edgepipe.devices.estimator`)."""

from __future__ import annotations

from edgepipe.devices.estimator import estimate
from edgepipe.devices.runtimes import check_runs_there
from edgepipe.devices.schema import DeviceEntry
from edgepipe.errors import InputError
from edgepipe.profiling.runner import EstimatedMeasurement, MeasureJob


class EstimatorRunner:
    """Estimates from the model's graph and the catalog entry's figures; runs nothing."""

    via = "estimated"
    needs_inputs = False

    def __init__(self, entry: DeviceEntry) -> None:
        self.entry = entry

    def describe(self) -> str:
        return (f"estimated: {self.entry.name} is reached over {self.entry.reach} and no "
                "device was given")

    def measure(self, job: MeasureJob) -> EstimatedMeasurement:
        entry = job.entry
        check_runs_there(entry, job.runtime, job.artifact.name)
        if job.summary is None:
            raise InputError(f"Cannot estimate {job.artifact.name} on {entry.name}: "
                             f"{job.graph_source}.",
                             hint="profile the ONNX artifact of the same model, or export with "
                             "edgepipe so manifest.json names the source.",
                             reference="no-graph-for-estimate")
        found = estimate(job.summary, entry, job.precision or "fp32")  # int8: int8 figures
        latency = {"label": "estimated", "steady": {"p50_s": found.latency_s},
                   "model": found.model, "calibration": found.calibration,
                   **({"bound": found.bound} if found.bound else {})}
        energy = found.energy.to_dict() if found.energy is not None else {
            "label": "unavailable", "why": f"{entry.name}.yaml has no active power figure"}
        return EstimatedMeasurement(
            reason=(f"{entry.name} is reached over {entry.reach}; no device was given, so "
                    "every figure is the estimator's"),
            latency=latency,
            memory={"artifact_size_bytes": job.size_block, "peak_activation_bytes": job.peak_block},
            energy=energy)

