"""Per-layer quantization sensitivity: quantize one compute layer at a time, measure the drop.

For each quantizable compute node (Conv, Gemm, MatMul, ...) of the float model, every other
node is kept in the backend's *backup* precision and only that one is quantized; the
artifact is measured on the eval split like any compressed artifact, and its drop against
the float artifact is recorded. The layers are ranked, most sensitive first. The backup is
float for int8 (a layer kept out of int8 stays float) and 8 bits for int4-weight (a layer
kept out of 4 bits gets 8-bit weights: mixed precision, as NNCF's ``ratio`` does it).

The drop, in "points" (higher is worse; the unit ``--max-drop`` takes):

- labelled data: top-1 points, ``100 * (float top-1 - quantized top-1)``;
- unlabelled data: cosine points, ``100 * (float cosine - quantized cosine)``, where cosine
  is the mean per-sample cosine similarity to the source model's outputs (worst output).
  The float artifact's own cosine (about 1.0) is the ceiling, so 0 means "as close to the
  source as the float artifact". SQNR (dB) is recorded beside it for reading, not ranked:
  it is unbounded for identical outputs, so "dB below the ceiling" has no fixed ceiling.

A backend that can quantize the same model with different layers kept back registers a
module in :data:`LAYERWISE` with ``layerwise(job)`` returning an object with ``layers``
(``[(name, op)]``), ``nodes`` (every node name), ``precision`` and ``backup`` (what a layer
gets, and what a kept layer gets instead: "int8"/"fp32", "int4"/"int8") and
``quantize(kept, path) -> Compressed``. It prepares (and calibrates) once; each variant then
costs a quantization and an evaluation.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edgepipe.compress.base import Compressed, CompressJob
from edgepipe.compress.config_base import CompressConfig
from edgepipe.compress.int4.config import Int4WeightConfig
from edgepipe.compress.int8.config import Int8StaticConfig
from edgepipe.errors import UnsupportedError
from edgepipe.evaluate import EvalResult
from edgepipe.progress import report

# (config type, format) -> the module whose ``layerwise(job)`` quantizes layer by layer.
LAYERWISE: dict[tuple[type[CompressConfig], str], str] = {
    (Int8StaticConfig, "onnx"): "edgepipe.compress.int8.ort",
    (Int4WeightConfig, "onnx"): "edgepipe.compress.int4.ort",
    (Int4WeightConfig, "openvino"): "edgepipe.compress.int4.openvino",
    (Int4WeightConfig, "tflite"): "edgepipe.compress.int4.litert",
}
SENSITIVITY_FILE = "sensitivity.json"
# How a precision reads in a sentence ("kept in float", "kept in 8 bits").
PRECISION_WORDS = {"fp32": "float", "int8": "8 bits", "int4": "4 bits"}


def in_words(precision: str) -> str:
    """``float`` for fp32, ``8 bits`` for int8...: the words for messages and tables."""
    return PRECISION_WORDS.get(precision, precision)

Check = Callable[[Compressed], tuple[EvalResult, dict[str, Any], Any]]


class Layerwise(Protocol):
    """A backend's quantizer of one model with a chosen set of nodes kept in ``backup``."""

    layers: list[tuple[str, str]]
    nodes: list[str]
    precision: str  # what a quantized layer gets: "int8", "int4"
    backup: str  # what a kept layer gets instead: "fp32", "int8"

    def quantize(self, kept: list[str], path: Path) -> Compressed: ...


def layerwise_backend(config: CompressConfig, fmt: str) -> str:
    """The LAYERWISE module of (config, fmt), or an UnsupportedError saying what works."""
    key = (type(config), fmt)
    if key not in LAYERWISE:
        works = ", ".join(f"--method {c.method} --format {f}" for c, f in LAYERWISE)
        raise UnsupportedError(
            f"Per-layer sensitivity and --max-drop are not available for --method "
            f"{config.method} --format {fmt}.", hint=f"they work for: {works}.",
            reference="sensitivity-not-available")
    return LAYERWISE[key]


def open_layerwise(job: CompressJob) -> Layerwise:
    """Prepare the backend of ``job`` (pre-processing, calibration) for per-layer work."""
    return importlib.import_module(layerwise_backend(job.config, job.fmt)).layerwise(job)


def drop_of(evaluation: EvalResult, float_eval: EvalResult) -> tuple[str, float, float]:
    """(drop metric, drop in points, the quantized artifact's value of that metric)."""
    if evaluation.metric == "top1" and float_eval.metric == "top1":
        return "top1", 100 * (float_eval.value - evaluation.value), evaluation.value
    quantized, reference = _cosine(evaluation), _cosine(float_eval)
    return "cosine", 100 * (reference - quantized), quantized


def _cosine(evaluation: EvalResult) -> float:
    return min(o.cosine_mean for o in evaluation.outputs)


def _sqnr(evaluation: EvalResult) -> float | None:
    values = [o.sqnr_db for o in evaluation.outputs]
    return None if not values or any(v is None for v in values) else min(values)  # type: ignore


@dataclass
class LayerSensitivity:
    """One layer quantized alone: its drop (points) and what was measured."""

    layer: str
    op: str
    drop: float
    value: float  # top-1 (fraction) or cosine similarity of the variant
    sqnr_db: float | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> LayerSensitivity:
        return cls(document["layer"], document["op"], document["drop"], document["value"],
                   document["sqnr_db"], document["seconds"])


@dataclass
class SensitivityTable:
    """Every compute layer, most sensitive first."""

    metric: str  # "top1" or "cosine"
    unit: str
    float_value: float
    layers: list[LayerSensitivity] = field(default_factory=list)
    seconds: float = 0.0
    calibrations: int = 1
    samples: int = 0
    precision: str = "int8"
    backup: str = "fp32"

    @property
    def ranking(self) -> list[str]:
        return [row.layer for row in self.layers]

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "unit": self.unit, "float_value": self.float_value,
                "samples": self.samples, "seconds": round(self.seconds, 3),
                "calibrations": self.calibrations, "precision": self.precision,
                "backup_precision": self.backup,
                "method": f"one compute layer in {self.precision} at a time, every other "
                          f"node in {self.backup}",
                "layers": [{"rank": i + 1, **row.to_dict()} for i, row in enumerate(self.layers)]}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> SensitivityTable:
        """From :meth:`to_dict` (the fixed ``method`` text and the ranks are not fields)."""
        return cls(document["metric"], document["unit"], document["float_value"],
                   [LayerSensitivity.from_dict(row) for row in document["layers"]],
                   document["seconds"], document["calibrations"], document["samples"],
                   document.get("precision", "int8"), document.get("backup_precision", "fp32"))


def measure_sensitivity(layerwise: Layerwise, check: Check, float_eval: EvalResult,
                        folder: Path, filename: str = "only.onnx") -> SensitivityTable:
    """Quantize each of ``layerwise.layers`` alone under ``folder`` (each variant named
    ``filename``, whose suffix the backend writes), measure, rank."""
    started = time.perf_counter()
    rows, metric = [], "top1"
    for index, (name, op) in enumerate(layerwise.layers):
        began = time.perf_counter()
        others = [n for n in layerwise.nodes if n != name]
        compressed = layerwise.quantize(others, folder / f"layer{index}" / filename)
        evaluation = check(compressed)[0]
        metric, drop, value = drop_of(evaluation, float_eval)
        rows.append(LayerSensitivity(name, op, round(drop, 6), value, _sqnr(evaluation),
                                     round(time.perf_counter() - began, 3)))
        report("sensitivity", index + 1, len(layerwise.layers), f"{name}: drop {drop:.3f}")
        for path in compressed.files:
            path.unlink(missing_ok=True)
    # Equal drops (a few eval samples rarely separate layers) are ranked by SQNR, lowest first.
    rows.sort(key=lambda row: (-row.drop, math.inf if row.sqnr_db is None else row.sqnr_db))
    float_value = float_eval.value if metric == "top1" else _cosine(float_eval)
    unit = "top-1 points" if metric == "top1" else "cosine points (100 x cosine drop)"
    return SensitivityTable(metric, unit, float_value, rows, time.perf_counter() - started,
                            samples=float_eval.samples, precision=layerwise.precision,
                            backup=layerwise.backup)
