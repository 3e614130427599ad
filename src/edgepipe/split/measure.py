"""Measured head and tail latencies for ``split plan --measure``.

For each cut asked for, the float head and tail are cut out of the traced model, exported
to ONNX and profiled with the agent: the head on the device (this machine, or the device
behind ``--host``), the tail on the server when it is this machine. The whole model is
profiled on both as the baselines. Whatever cannot be reached stays the estimator's.
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from edgepipe.model import LoadedModel
from edgepipe.profiling.runner import LatencySettings
from edgepipe.tensors import TensorSpec

QUICK = LatencySettings(runs=50, duration_s=0.5, warmup_runs=10, per_layer=False, energy=False)


def _export(module: torch.nn.Module, name: str, inputs: list[TensorSpec], folder: Path) -> Path:
    from edgepipe.export.api import export_model
    from edgepipe.export.config import ExportConfig

    spec = LoadedModel(spec=name, kind="torch", inputs=inputs, module=module.eval())
    export_model(spec, folder / name, ExportConfig(formats=("onnx",)))
    return folder / name / f"{name}.onnx"


@dataclass
class CutTimes:
    """Measured p50 seconds: heads on the device and tails on the server by cut label, and
    the whole model on each (None where it was not reachable)."""

    heads: dict[str, float] = field(default_factory=dict)
    tails: dict[str, float] = field(default_factory=dict)
    whole_on_device_s: float | None = None
    whole_on_server_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> CutTimes:
        return cls(**document)


def measure_cuts(loaded: LoadedModel, points: list[Any], *, device: str, server: str,
                 device_reachable: bool, server_reachable: bool, host: Any = None,
                 remote_python: str = "python3",
                 settings: LatencySettings = QUICK) -> CutTimes:
    """p50 seconds of heads (on the device) and tails (on the server), by cut label."""
    from edgepipe.profiling.profile import profile
    from edgepipe.profiling.target import Target, resolve_target
    from edgepipe.split.points import split_graph, trace

    on_device = resolve_target(device, device=host, remote_python=remote_python)
    on_server = resolve_target(server)

    def p50(path: Path, target: Target) -> float:
        doc = profile(path, target, settings)
        return float(doc.to_dict()["latency"]["steady"]["p50_s"])

    sample = torch.from_numpy(loaded.sample_inputs(1)[0])
    traced = trace(copy.deepcopy(loaded.module).eval(), sample)
    found = CutTimes()
    with tempfile.TemporaryDirectory(prefix="edgepipe-plan-") as name:
        folder = Path(name)
        whole = _export(loaded.module, "whole", loaded.inputs, folder)
        if device_reachable:
            found.whole_on_device_s = p50(whole, on_device)
        if server_reachable:
            found.whole_on_server_s = p50(whole, on_server)
        for i, point in enumerate(points):
            head, tail = split_graph(traced, point.index)
            if device_reachable:
                path = _export(head, f"head{i}", loaded.inputs, folder)
                found.heads[point.label] = p50(path, on_device)
            if server_reachable:
                spec = TensorSpec("cut", tuple(point.shape), point.dtype)
                path = _export(tail, f"tail{i}", [spec], folder)
                found.tails[point.label] = p50(path, on_server)
    return found


def bottleneck_rows(split_dir: Path, device: Any, server: Any, precision: str, *,
                    measure: bool = False, device_reachable: bool = False,
                    server_reachable: bool = False, host: Any = None,
                    remote_python: str = "python3",
                    settings: LatencySettings = QUICK) -> dict[str, dict[str, Any]]:
    """A split run directory's cut: its measured bytes per sample, and the times of its own
    ``head.onnx`` (with the encoder and quantizer) on ``device`` and ``tail.onnx`` (with
    the decoder) on ``server``, profiled with ``measure`` where reachable, else estimated.
    An entropy-coded split counts its real bitstreams' mean bytes, and adds the range
    coder's measured encode time to the head and decode time to the tail (also given apart
    as ``entropy_coder``; the plan's row keeps its name, ``cut LABEL (bottleneck)``, and its
    sources say "+ range coder measured")."""
    import json

    from edgepipe.devices.estimator import per_layer_seconds
    from edgepipe.errors import InputError
    from edgepipe.profiling.graph import summary_for
    from edgepipe.profiling.profile import profile
    from edgepipe.profiling.target import resolve_target

    manifest = split_dir / "manifest.json"
    if not manifest.is_file():
        raise InputError(f"{split_dir} has no manifest.json.",
                         hint="give --split the OUT directory of an `edgepipe split` run.",
                         reference="not-a-split-run")
    steps = [s for s in json.loads(manifest.read_text()).get("steps", [])
             if s.get("step") == "split"]
    if not steps:
        raise InputError(f"{manifest} records no split step.",
                         hint="give --split the OUT directory of an `edgepipe split` run.",
                         reference="not-a-split-run")
    rows = {}
    for step in steps:
        result = step["result"]
        parts = {}
        for part, target, reachable, remote in (("head", device, device_reachable, host),
                                                ("tail", server, server_reachable, None)):
            path = split_dir / f"{part}.onnx"
            if measure and reachable and path.is_file():
                doc = profile(path, resolve_target(target, device=remote,
                                                   remote_python=remote_python), settings)
                parts[part] = (float(doc.to_dict()["latency"]["steady"]["p50_s"]), "measured")
                continue
            summary = summary_for(path)[0] if path.is_file() else None
            if summary is None:
                raise InputError(f"{split_dir} has no {part}.onnx to time the bottleneck's "
                                 f"{part} with.", hint="run `edgepipe split` with -f onnx.",
                                 reference="split-without-onnx")
            precision_here = precision if part == "head" else "fp32"
            parts[part] = (float(per_layer_seconds(summary, target, precision_here).sum()),
                           "estimated")
        accuracy = result.get("accuracy") or {}
        entropy = result.get("entropy")
        if entropy:  # the range coder runs after the head and before the tail
            parts["head"] = (parts["head"][0] + entropy["encode_s_per_sample"],
                             parts["head"][1] + " + range coder measured")
            parts["tail"] = (parts["tail"][0] + entropy["decode_s_per_sample"],
                             parts["tail"][1] + " + range coder measured")
        rows[result["cut"]["label"]] = {
            "bytes": entropy["bitstream_bytes_mean"] if entropy
            else result["bytes_per_sample"]["packed_bytes"],
            "accuracy": accuracy.get("split_onnxruntime", accuracy.get("split_torch")), **parts,
            "entropy_coder": None if not entropy else {
                "encode_s": entropy["encode_s_per_sample"],
                "decode_s": entropy["decode_s_per_sample"],
                "measured": "on the machine that ran `edgepipe split`"}}
    return rows
