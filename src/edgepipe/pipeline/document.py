"""The typed ``report.json`` of a recipe run, and what its two renderers share.

:class:`Report` is the whole document; its rows are dataclasses that
:mod:`edgepipe.pipeline.report` builds (and renders as Markdown) and
:mod:`edgepipe.pipeline.html` reads by attribute. On disk it is ``Report.to_dict()``; the
keys a row has only sometimes (``split`` on a split's parts, ``budget`` on a variant held to
the budget, ...) are ``ABSENT`` until set. Its schema is ``docs/schemas/report.v1.schema.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from edgepipe.data.preprocessing import Preprocessing
from edgepipe.documents import ABSENT, Document, optional_key
from edgepipe.units import format_bytes

REPORT_SCHEMA_VERSION = 1


@dataclass(kw_only=True)
class StepError(Document):
    """Why a step failed: an edgepipe error (with its reference) or an unexpected one (with
    the end of its traceback)."""

    type: str
    reference: str = optional_key()
    message: str
    hint: str | None = None
    traceback: str = optional_key()


@dataclass(kw_only=True)
class Accuracy(Document):
    """The metric of an artifact, measured on the artifact in its runtime."""

    metric: str = "top1"
    value: float
    samples: int = 0
    runtime: str = ""
    label: str = "measured"
    on: str = ""


@dataclass(kw_only=True)
class Fit(Document):
    """Whether an artifact fits a device, and what decided it."""

    fits: bool
    label: str = "estimated"
    reason: str = ""


@dataclass(kw_only=True)
class LayerTime(Document):
    """One layer's time on a target (the slowest layers of an artifact)."""

    name: str | None
    op: str | None
    seconds: float


@dataclass(kw_only=True)
class Cell(Document):
    """One artifact on one target: its profile's main figures, labelled measured or
    estimated, and whether it fits; or the error of its profile step."""

    status: str
    error: StepError = optional_key()
    cached: bool = optional_key()
    mode: str | None = optional_key()
    latency_s: float | None = optional_key()
    latency_label: str | None = optional_key()
    latency_model: str | None = optional_key()
    latency_bound: str | None = optional_key(doc="\"lower\": the latency is at least this")
    energy_j: float | None = optional_key()
    energy_label: str | None = optional_key()
    energy_how: str | None = optional_key()
    size_bytes: Any = optional_key()
    peak_rss_bytes: int | None = optional_key()
    peak_activation_bytes: int | None = optional_key()
    layers: list[LayerTime] = optional_key()
    layers_label: str | None = optional_key()
    layers_note: str | None = optional_key()
    fit: Fit = optional_key()
    profile: str = optional_key(doc="the Profile document, relative to OUT")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def lower_bound(self) -> str:
        """`` (a lower bound)`` where the estimator says its figure is one (a peak MAC
        rate, not a calibrated one), so that it is not read as comparable to a calibrated
        estimate."""
        return " (a lower bound)" if self.latency_bound == "lower" else ""

    @property
    def fits(self) -> bool:
        return bool(self.fit and self.fit.fits)


@dataclass(kw_only=True)
class SplitInfo(Document):
    """Where a split variant cuts, and what crosses the link per sample."""

    at: str | None
    bottleneck: int | None
    bytes_per_sample: float = field(metadata={
        "doc": "mean bytes per sample on the link: the packed codes, or with coding "
               "'entropy' the range-coded bitstreams' lengths"})
    input_bytes: int
    coding: str = field(default="packed", metadata={"doc": "packed (the codes at their bit "
                                                           "width) or entropy (bitstreams)"})


@dataclass(kw_only=True)
class ReportArtifact(Document):
    """One artifact of a variant, with its accuracy and its figures on every target."""

    name: str
    path: str
    format: str
    precision: str
    size_bytes: int
    sha256: str = ""
    role: str = "model"
    accuracy: Accuracy | None = None
    float_accuracy: float | None = optional_key()
    split: SplitInfo = optional_key()
    targets: dict[str, Cell] = optional_key(doc="per target name; absent on a split's tail")

    @property
    def accuracy_value(self) -> float | None:
        return self.accuracy.value if self.accuracy else None

    def cell(self, target: str) -> Cell | None:
        return (self.targets or {}).get(target)


@dataclass(kw_only=True)
class VariantResult(Document):
    """What a variant's build step made."""

    artifacts: list[ReportArtifact] = field(default_factory=list)
    folder: str = ""
    failed_formats: list[FailedFormat] = field(default_factory=list)


@dataclass(kw_only=True)
class FailedFormat(Document):
    """A format a variant did not make while it made the others (the first line of why)."""

    format: str
    message: str = field(metadata={"doc": "the first line of the error"})


@dataclass(kw_only=True)
class VariantBudget(Document):
    """A variant's accuracy drop against the reference (its best artifact)."""

    drop: float
    unit: str = "top-1 points"
    max_drop: float
    within: bool


@dataclass(kw_only=True)
class PlanCell(Document):
    """A split variant's plan on one target (``edgepipe split plan``'s figures: ``options``
    rows of head, bytes, transfer and tail seconds), or the error of its plan step."""

    status: str
    error: StepError = optional_key()
    cached: bool = optional_key()
    device: str = optional_key()
    server: str = optional_key()
    link: dict[str, Any] = optional_key()
    label: str = optional_key()
    options: list[dict[str, Any]] = optional_key()
    pareto: Any = optional_key()
    sweep: Any = optional_key()
    models: Any = optional_key()


@dataclass(kw_only=True)
class ReportVariant(Document):
    """One variant of the recipe: its build (result or error) and its artifacts."""

    name: str
    method: str
    config: dict[str, Any] = field(default_factory=dict)
    status: str
    result: VariantResult = optional_key()
    error: StepError = optional_key()
    cached: bool = False
    seconds: float = 0.0
    plans: dict[str, PlanCell] = optional_key()
    budget: VariantBudget = optional_key()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def artifacts(self) -> list[ReportArtifact]:
        return self.result.artifacts if self.ok and self.result else []


@dataclass(kw_only=True)
class ReportTarget(Document):
    """A target of the recipe and whether its figures are measured."""

    name: str
    title: str
    kind: str
    reach: str
    device: str | None
    measured: bool


@dataclass(kw_only=True)
class Reference(Document):
    """The accuracy the budget counts from."""

    variant: str
    artifact: str = ""
    value: float
    metric: str = "top1"


@dataclass(kw_only=True)
class Budget(Document):
    """The recipe's accuracy budget."""

    max_drop: float
    unit: str = "top-1 points"
    reference: Reference | None = None


@dataclass(kw_only=True)
class Pick(Document):
    """A recommended artifact with the figures that decided it."""

    variant: str
    artifact: str
    path: str
    format: str
    latency_s: float
    latency_label: str | None
    size_bytes: int
    accuracy: float
    drop: float
    summary: str


@dataclass(kw_only=True)
class Excluded(Document):
    """An artifact not recommended for a target, and why."""

    artifact: str
    why: str


@dataclass(kw_only=True)
class Recommendation(Document):
    """The fastest and the smallest artifact within the budget that fit a target."""

    fastest: Pick | None
    smallest: Pick | None
    excluded: list[Excluded] = field(default_factory=list)
    reason: str


@dataclass(kw_only=True)
class StepRecord(Document):
    """One step of the run (build, profile, plan): ran or reused from the cache."""

    step: str
    kind: str
    status: str
    cached: bool
    seconds: float
    digest: str


@dataclass(kw_only=True)
class Summary(Document):
    """The counts of the run."""

    variants: int
    failed: list[str]
    over_budget: list[str]
    failed_formats: list[str]
    steps_run: int
    steps_cached: int
    steps_failed: int


@dataclass(kw_only=True)
class RecipeInfo(Document):
    """The recipe the report is of (its content as loaded, defaults filled)."""

    path: str | None
    name: str
    content: dict[str, Any]


@dataclass(kw_only=True)
class Report(Document):
    """``report.json``: a recipe run's variants, artifacts, figures per target and
    recommendations."""

    SCHEMA_NAME: ClassVar[str] = "report"
    SCHEMA_VERSION: ClassVar[int] = REPORT_SCHEMA_VERSION

    schema_version: int = REPORT_SCHEMA_VERSION
    kind: str = "edgepipe report"
    created: str
    edgepipe: str
    recipe: RecipeInfo
    budget: Budget
    targets: list[ReportTarget]
    variants: list[ReportVariant]
    recommendations: dict[str, Recommendation]
    steps: list[StepRecord]
    summary: Summary
    preprocessing: Preprocessing = optional_key(
        doc="how the recipe's data was prepared for the model (as its artifacts record)")

    def data_line(self) -> str | None:
        """``Data: builtin:digits, prepared as unit (0..1), gray.``; None if not recorded."""
        if not self.preprocessing:
            return None
        return (f"Data: {self.preprocessing.source}, prepared as "
                f"{self.preprocessing.describe()}.")


@dataclass(frozen=True)
class Candidate:
    """A whole-model row of a target's table: the variant, the artifact and its cell."""

    variant: str
    method: str
    artifact: ReportArtifact
    cell: Cell


def candidates(variants: list[ReportVariant], target: str) -> list[Candidate]:
    """Every built artifact with figures on ``target`` (a split's tail has none)."""
    return [Candidate(variant.name, variant.method, artifact, cell)
            for variant in variants for artifact in variant.artifacts
            if (cell := artifact.cell(target)) is not None]


def points(value: float) -> str:
    """``1`` -> ``1 point``, ``2.5`` -> ``2.5 points`` (top-1 points)."""
    return f"{value:g} point{'' if value == 1 else 's'}"


def fmt_seconds(value: float | None) -> str:
    if value is None or value is ABSENT:
        return "—"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def fmt_bytes(value: float | None) -> str:
    if value is None or value is ABSENT:
        return "—"
    return format_bytes(value)


def fmt_accuracy(value: float | None) -> str:
    """``0.9749`` -> ``97.49%``; ``—`` without one."""
    return "—" if value is None else f"{100 * value:.2f}%"
