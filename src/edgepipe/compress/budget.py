"""The accuracy budget: keep the most sensitive layers back until the drop fits.

After the fully quantized artifact is measured, :func:`tune` runs the per-layer sensitivity
(when asked, or when the artifact misses ``max_drop``) and then, greedily by that ranking,
keeps one more layer in the backend's backup precision (float for int8, 8 bits for
int4-weight), re-quantizes and re-measures, until the drop is at most ``max_drop`` (points,
see :mod:`edgepipe.compress.sensitivity`). At least one layer stays quantized: an artifact
with every compute layer kept back is the float (or the all-8-bit) model. When no step
meets the budget, the best one found is kept under ``NAME.<method>.over-budget.onnx`` and
the caller raises a ToleranceError after recording it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from edgepipe import progress
from edgepipe.compress.base import Compressed, CompressJob
from edgepipe.compress.document import Document
from edgepipe.compress.sensitivity import (
    Check,
    SensitivityTable,
    drop_of,
    in_words,
    layerwise_backend,
    measure_sensitivity,
    open_layerwise,
)
from edgepipe.errors import InputError
from edgepipe.evaluate import EvalResult
from edgepipe.export.base import log

OVER_BUDGET = "over-budget"


@dataclass
class AccuracyBudget:
    """``max_drop``: the largest drop allowed, in points (top-1 with labels, cosine without);
    None for no budget. ``sensitivity``: measure and save the per-layer table in any case."""

    max_drop: float | None = None
    sensitivity: bool = False

    def __post_init__(self) -> None:
        if self.max_drop is not None:
            if not (isinstance(self.max_drop, (int, float)) and math.isfinite(self.max_drop)
                    and self.max_drop >= 0):
                raise InputError(f"--max-drop {self.max_drop} must be a number of points >= 0.",
                                 hint="give e.g. --max-drop 0.5 (top-1 points with labels, "
                                 "cosine points without).", reference="bad-max-drop")
            self.max_drop = float(self.max_drop)

    @property
    def active(self) -> bool:
        return self.sensitivity or self.max_drop is not None

    def check_supported(self, config: Any, formats: tuple[str, ...]) -> None:
        """Fail before any work when the method or a format has no layer-wise backend."""
        if self.active:
            for fmt in formats:
                layerwise_backend(config, fmt)

    def to_dict(self) -> dict[str, Any]:
        return {"max_drop": self.max_drop, "sensitivity": self.sensitivity}


@dataclass
class BudgetStep(Document):
    """One step of the budget's path: the layers kept back (in the outcome's backup
    precision) and the drop it measured."""

    step: int
    kept: list[str]
    metric: str  # "top1" or "cosine"
    drop: float  # points
    value: float
    met: bool | None  # None without a --max-drop


@dataclass
class BudgetOutcome:
    """What the budget did for one format: the budget, whether it was met, every step, and
    each layer's precision; ``backup_precision``: what a kept layer got ("fp32" for int8,
    "int8" for int4-weight); ``artifact`` names the artifact it settled on (in the result)."""

    max_drop: float | None
    sensitivity: bool
    met: bool | None
    steps: list[BudgetStep]
    layers: dict[str, str]  # layer -> "fp32" | "int8" | "int4"
    artifact: str | None = None
    backup_precision: str = "fp32"

    @property
    def kept(self) -> list[str]:
        """The layers kept back: in the backup precision, or in float by the config."""
        return [name for name, precision in self.layers.items()
                if precision in (self.backup_precision, "fp32")]

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {} if self.artifact is None else {"artifact": self.artifact}
        return {**document, "max_drop": self.max_drop, "sensitivity": self.sensitivity,
                "met": self.met, "steps": [step.to_dict() for step in self.steps],
                "layers": self.layers, "backup_precision": self.backup_precision,
                "kept": self.kept}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> BudgetOutcome:
        return cls(document["max_drop"], document["sensitivity"], document["met"],
                   [BudgetStep.from_dict(step) for step in document["steps"]],
                   document["layers"], document.get("artifact"),
                   document.get("backup_precision", "fp32"))


@dataclass
class Tuned:
    """The artifact the budget settled on, how it was measured, and the path taken."""

    compressed: Compressed
    evaluation: EvalResult
    parity: dict[str, Any]
    session: Any
    sensitivity: SensitivityTable | None = None
    steps: list[BudgetStep] = field(default_factory=list)
    layers: dict[str, str] = field(default_factory=dict)  # layer -> "fp32" | "int8" | "int4"
    met: bool | None = None  # None without a budget
    backup: str = "fp32"

    def report(self, budget: AccuracyBudget) -> BudgetOutcome:
        """The budget's outcome for the manifest and the result (no sensitivity table)."""
        return BudgetOutcome(budget.max_drop, budget.sensitivity, self.met, list(self.steps),
                             dict(self.layers), backup_precision=self.backup)


def tune(job: CompressJob, compressed: Compressed, check: Check, float_eval: EvalResult,
         budget: AccuracyBudget) -> Tuned:
    """Measure ``compressed`` and, as ``budget`` asks, rank the layers and meet the budget."""
    evaluation, parity, session = check(compressed)
    tuned = Tuned(compressed, evaluation, parity, session)
    metric, drop, value = drop_of(evaluation, float_eval)
    tuned.steps.append(_step(0, [], metric, drop, value, budget))
    over = budget.max_drop is not None and drop > budget.max_drop
    if not (budget.sensitivity or over):
        tuned.met = None if budget.max_drop is None else True
        return tuned
    folder = job.path.parent / "layerwise"
    folder.mkdir(exist_ok=True)
    layerwise = open_layerwise(CompressJob(job.source, job.config, job.fmt, job.float_path,
                                           folder / job.path.name, job.calibration,
                                           job.threads))
    table = measure_sensitivity(layerwise, check, float_eval, folder, job.path.name)
    tuned.sensitivity, tuned.backup = table, layerwise.backup
    tuned.layers = {name: "fp32" for name in getattr(job.config, "exclude", ())}
    tuned.layers.update({name: layerwise.precision for name, _ in layerwise.layers})
    if budget.max_drop is None:
        return tuned
    if not over:
        tuned.met = True
        return tuned
    best = (drop, 0, tuned.compressed, evaluation, parity, session)
    kept: list[str] = []
    for count, name in enumerate(table.ranking[:-1], start=1):  # at least one quantized
        kept.append(name)
        candidate = layerwise.quantize(list(kept), folder / f"keep{count}" / job.path.name)
        evaluation, parity, session = check(candidate)
        metric, drop, value = drop_of(evaluation, float_eval)
        tuned.steps.append(_step(count, kept, metric, drop, value, budget))
        log.info("budget step %d: %s kept in %s, drop %.3f points", count, name,
                 in_words(layerwise.backup), drop)
        progress.report("accuracy budget", count, len(table.ranking) - 1,
                        f"{count} layer(s) in {in_words(layerwise.backup)}, drop {drop:.3f}")
        if drop < best[0]:
            best = (drop, count, candidate, evaluation, parity, session)
        if drop <= budget.max_drop:
            break
    progress.report("accuracy budget", len(table.ranking) - 1, len(table.ranking) - 1, "done")
    drop, count, chosen, evaluation, parity, session = best
    tuned.met = drop <= budget.max_drop
    for item in chosen.left_in_float:
        if item["layer"] in table.ranking[:count]:
            item["reason"] = "kept in float by the accuracy budget (--max-drop)"
    if not tuned.met:
        chosen = _rename_over_budget(chosen, job)
    tuned.compressed, tuned.evaluation, tuned.parity, tuned.session = (chosen, evaluation,
                                                                       parity, session)
    tuned.layers.update({name: layerwise.backup for name in table.ranking[:count]})
    return tuned


def _step(count: int, kept: list[str], metric: str, drop: float, value: float,
          budget: AccuracyBudget) -> BudgetStep:
    return BudgetStep(count, list(kept), metric, round(drop, 6), value,
                      None if budget.max_drop is None else drop <= budget.max_drop)


def _rename_over_budget(compressed: Compressed, job: CompressJob) -> Compressed:
    """Move the best artifact to ``NAME.<method>.over-budget.onnx`` in staging (an IR's
    ``.bin`` beside its ``.xml`` is renamed with it: the IR finds it by name)."""
    stem = job.path.name[: -len(job.path.suffix)]
    target = job.path.with_name(f"{stem}.{OVER_BUDGET}{job.path.suffix}")
    moved = []
    for path in compressed.files:
        if path.parent == compressed.path.parent and path.stem == compressed.path.stem:
            renamed = target.with_suffix(path.suffix)
            os.replace(path, renamed)
            moved.append(renamed)
        else:
            moved.append(path)
    return Compressed(target, moved, compressed.precision, compressed.tool,
                      compressed.left_in_float, compressed.notes)
