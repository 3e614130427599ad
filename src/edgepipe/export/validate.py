"""Parity: an artifact's outputs, in its own runtime, against the reference's.

Per output: max and mean absolute difference, SQNR in dB, and for classifiers (2-D outputs
with more than one column) top-1 agreement. An output passes when
``max_abs_diff <= atol * max(1, max|reference|)``: an absolute tolerance for outputs of
unit scale or below, a relative one for larger outputs (logits of an untrained net can be
in the hundreds, and float error grows with the values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgepipe.tensors import format_shape


@dataclass
class OutputParity:
    """How one output of the artifact compares with the reference."""

    name: str
    shape: tuple[int, ...]
    max_abs_diff: float
    mean_abs_diff: float
    sqnr_db: float  # math.inf when the outputs are identical
    scale: float
    limit: float
    top1_agreement: float | None = None
    error: str | None = None  # a shape mismatch or non-finite values

    @property
    def passed(self) -> bool:
        return self.error is None and self.max_abs_diff <= self.limit

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "shape": list(self.shape), "passed": self.passed,
            "max_abs_diff": _finite(self.max_abs_diff),
            "mean_abs_diff": _finite(self.mean_abs_diff),
            "sqnr_db": None if math.isinf(self.sqnr_db) else _finite(self.sqnr_db),
            "identical": self.max_abs_diff == 0 and self.error is None,
            "scale": self.scale, "limit": self.limit,
            "top1_agreement": self.top1_agreement, "error": self.error,
        }

    def line(self) -> str:
        """One line for messages: the output's worst difference against its limit."""
        if self.error:
            return f"{self.name}: {self.error}"
        sqnr = "inf" if math.isinf(self.sqnr_db) else f"{self.sqnr_db:.1f}"
        top1 = "" if self.top1_agreement is None else f", top-1 {self.top1_agreement:.0%}"
        verdict = "ok" if self.passed else "FAIL"
        return (f"{self.name} {format_shape(self.shape)}: max|diff| {self.max_abs_diff:.3g} "
                f"(limit {self.limit:.3g}), mean {self.mean_abs_diff:.3g}, "
                f"SQNR {sqnr} dB{top1} [{verdict}]")


@dataclass
class ParityReport:
    """Every output's comparison, the tolerance used and how the inputs were made."""

    outputs: list[OutputParity]
    atol: float
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    @property
    def worst(self) -> OutputParity:
        return max(self.outputs, key=lambda o: (o.error is not None, o.max_abs_diff / o.limit
                                                if o.limit else o.max_abs_diff))

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "atol": self.atol,
            "rule": "max_abs_diff <= atol * max(1, max|reference|), per output",
            "inputs": self.inputs,
            "outputs": [o.to_dict() for o in self.outputs],
        }


def compare_outputs(reference: list[np.ndarray], actual: list[np.ndarray], names: list[str],
                    atol: float) -> ParityReport:
    """Compare the artifact's outputs with the reference, output by output."""
    results = []
    if len(reference) != len(actual):
        message = f"the artifact gives {len(actual)} output(s), the reference {len(reference)}"
        return ParityReport([OutputParity("outputs", (), math.inf, math.inf, -math.inf, 1.0, 0.0,
                                          error=message)], atol)
    for name, ref, out in zip(names, reference, actual, strict=True):
        results.append(compare_one(name, np.asarray(ref), np.asarray(out), atol))
    return ParityReport(results, atol)


def compare_one(name: str, reference: np.ndarray, actual: np.ndarray, atol: float) -> OutputParity:
    """One output's differences and verdict."""
    ref = reference.astype(np.float64)
    scale = float(max(1.0, np.max(np.abs(ref)))) if ref.size else 1.0
    limit = atol * scale
    if ref.shape != actual.shape:
        if ref.size == actual.size:  # e.g. a squeezed batch dimension: compare the values
            actual = actual.reshape(ref.shape)
        else:
            return OutputParity(name, tuple(ref.shape), math.inf, math.inf, -math.inf, scale,
                                limit, error=f"shape {format_shape(actual.shape)} instead of "
                                f"{format_shape(ref.shape)}")
    out = actual.astype(np.float64)
    if not np.all(np.isfinite(out[np.isfinite(ref)])):
        return OutputParity(name, tuple(ref.shape), math.inf, math.inf, -math.inf, scale, limit,
                            error="NaN or infinite values where the reference is finite")
    diff = np.abs(np.where(np.isfinite(ref), out - ref, 0.0))
    max_diff = float(diff.max()) if diff.size else 0.0
    mean_diff = float(diff.mean()) if diff.size else 0.0
    return OutputParity(name, tuple(ref.shape), max_diff, mean_diff, sqnr_db(ref, out), scale,
                        limit, top1_agreement=top1_agreement(ref, out))


def sqnr_db(reference: np.ndarray, actual: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB (inf when identical)."""
    finite = np.isfinite(reference)
    signal = float(np.sum(reference[finite] ** 2))
    noise = float(np.sum((reference[finite] - actual[finite]) ** 2))
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def top1_agreement(reference: np.ndarray, actual: np.ndarray) -> float | None:
    """Share of rows whose argmax agrees, for (batch, classes) outputs; None otherwise."""
    if reference.ndim != 2 or reference.shape[1] < 2:
        return None
    return float(np.mean(np.argmax(reference, axis=1) == np.argmax(actual, axis=1)))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
