"""What a compress run returns: :class:`CompressResult` and its typed parts.

Every part is a dataclass with ``to_dict`` / ``from_dict``; ``to_dict`` writes exactly the
document that ``--json`` prints and ``manifest.json`` holds (same keys, same order), so the
JSON edge is the only place a result becomes a dict. Backend blocks of a compressed
artifact's ``tool`` record keep each backend's own document (``ToolRecord.backend``); the
parts another package reads (low-bit sizes, binary storage / operations / latency /
training, low-rank selection) are read through typed blocks (``ToolRecord.sizes``,
``.binary``, ``.lowrank``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgepipe import documents
from edgepipe.compress.binary.measure import BinaryLatency, BinaryOperations, BinaryStorage
from edgepipe.compress.budget import BudgetOutcome
from edgepipe.compress.document import Document
from edgepipe.compress.lowbit.sizes import PackedSizes
from edgepipe.compress.sensitivity import SensitivityTable
from edgepipe.data.preprocessing import Preprocessing
from edgepipe.evaluate import EvalResult
from edgepipe.model.loaded import ModelSource
from edgepipe.rundir import ArtifactRecord
from edgepipe.tensors import TensorSpec


def eval_summary(result: EvalResult) -> dict[str, Any]:
    """An EvalResult as an artifact's ``metrics.eval`` records it: without the host (the
    record carries it once, beside)."""
    document = result.to_dict()
    document.pop("host", None)
    return document


@dataclass
class FailedFormat(Document):
    """A format that failed while the others went on: which, and the error's parts."""

    format: str
    reference: str
    message: str
    hint: str | None = None


@dataclass
class CheckData(Document):
    """The samples every artifact was measured on: the eval split (or, said so, another
    part of the data), or seeded random inputs when no data was given."""

    source: str
    part: str
    samples: int
    labelled: bool
    # the data split's description (with data); the random inputs' seed (without data)
    split: dict[str, Any] | None = field(default=None, metadata={"omitted_when_none": True})
    seed: int | None = field(default=None, metadata={"omitted_when_none": True})

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"source": self.source, "part": self.part,
                                    "samples": self.samples, "labelled": self.labelled}
        if self.split is not None:
            document["split"] = self.split
        if self.seed is not None:
            document["seed"] = self.seed
        return document


@dataclass
class CalibrationUsed(Document):
    """The calibration of a static int8 artifact: how many samples, from where, how."""

    method: str
    samples: int
    source: str
    random: bool = False  # random N(0,1) inputs (--allow-random-calibration)

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"method": self.method, "samples": self.samples,
                                    "source": self.source}
        if self.random:
            document["random"] = True
        return document


@dataclass
class LeftInFloat(Document):
    """A layer a backend did not compress, and why (not an error)."""

    layer: str
    op: str
    reason: str


@dataclass
class TrainingSummary:
    """What a training step ran (binary; wNaM --qat; lowrank fine-tuning), as the CLI shows
    it; ``document`` is the whole record (validation history, optimizer, checkpoint...)."""

    loss: str
    epochs_run: int
    best_epoch: int
    seconds: float
    labelled: bool
    document: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return self.document

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> TrainingSummary:
        return cls(document["loss"], document["epochs_run"], document["best_epoch"],
                   document["seconds"], document["labelled"], document)


@dataclass
class BinaryTool:
    """The binary backend's measured and computed figures."""

    storage: BinaryStorage
    operations: BinaryOperations
    latency: BinaryLatency
    training: TrainingSummary


@dataclass
class LayerDecision:
    """One layer of a low-rank run: its ranks, weights, timings and what was decided."""

    layer: str
    kind: str
    decision: str
    reason: str
    ranks: list[int] | None = None
    params_before: int = 0
    params_after: int | None = None
    original_ms: float | None = None  # ONNX Runtime timings of the layer alone
    factorized_ms: float | None = None

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> LayerDecision:
        latency = document.get("latency") or {}
        return cls(document["layer"], document.get("kind", document.get("op", "")),
                   document["decision"], document["reason"], document.get("ranks"),
                   document.get("params_before", 0), document.get("params_after"),
                   latency.get("original_ms"), latency.get("factorized_ms"))


@dataclass
class CountChange:
    """Parameters or MACs before and after, and their ratio."""

    before: int
    after: int
    ratio: float

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> CountChange:
        return cls(document["before"], document["after"], document["ratio"])


@dataclass
class LowRankSelection:
    """What a low-rank run did: how ranks were picked, the counts, and each layer."""

    by: str
    params: CountChange
    macs: CountChange
    layers: list[LayerDecision]

    @classmethod
    def from_tool(cls, backend: dict[str, Any]) -> LowRankSelection:
        return cls(backend["rank_selection"]["by"], CountChange.from_dict(backend["params"]),
                   CountChange.from_dict(backend["macs"]),
                   [LayerDecision.from_dict(layer) for layer in backend["layers"]])


@dataclass
class WeightLayerCounts(Document):
    """int4-weight: how many weight layers got 4 bits, 8 bits, or stayed float (each
    layer, with its features, group size or the reason it was kept, is in the tool
    record's ``weight_layers``)."""

    int4: int
    int8: int
    kept_float: int


TOOL_KEYS = ("from", "left_in_float", "notes", "files")


@dataclass
class ToolRecord:
    """How a compressed artifact was made: the backend's own block (quantizer, version,
    settings and its figures, in the backend's words), the float artifact it came from,
    the layers left in float, notes, every file's size and hash, and (with an accuracy
    budget) each layer's precision."""

    backend: dict[str, Any]
    source_artifact: str
    left_in_float: list[LeftInFloat] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> size, sha256
    layer_precision: dict[str, str] | None = None

    @property
    def sizes(self) -> PackedSizes | None:
        """wNaM: the file's bytes beside the packed size (computed)."""
        sizes = self.backend.get("sizes")
        return None if sizes is None else PackedSizes.from_dict(sizes)

    @property
    def binary(self) -> BinaryTool | None:
        """binary: packed storage, operations, latency and training."""
        if not all(k in self.backend for k in ("storage", "operations", "latency", "training")):
            return None
        return BinaryTool(BinaryStorage.from_dict(self.backend["storage"]),
                          BinaryOperations.from_dict(self.backend["operations"]),
                          BinaryLatency.from_dict(self.backend["latency"]),
                          TrainingSummary.from_dict(self.backend["training"]))

    @property
    def lowrank(self) -> LowRankSelection | None:
        """lowrank: the rank selection and each layer's decision."""
        if "rank_selection" not in self.backend or "layers" not in self.backend:
            return None
        return LowRankSelection.from_tool(self.backend)

    @property
    def weight_layers(self) -> WeightLayerCounts | None:
        """int4-weight: the layers' counts by precision, and the group size."""
        counts = self.backend.get("layer_counts")
        return None if counts is None else WeightLayerCounts.from_dict(counts)

    def to_dict(self) -> dict[str, Any]:
        document = {**self.backend, "from": self.source_artifact,
                    "left_in_float": [item.to_dict() for item in self.left_in_float],
                    "notes": list(self.notes), "files": self.files}
        if self.layer_precision is not None:
            document["layer_precision"] = self.layer_precision
        return document

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> ToolRecord:
        backend = {k: v for k, v in document.items()
                   if k not in (*TOOL_KEYS, "layer_precision")}
        return cls(backend, document["from"],
                   [LeftInFloat.from_dict(item) for item in document["left_in_float"]],
                   list(document["notes"]), document["files"],
                   document.get("layer_precision"))


@dataclass
class ArtifactMetrics(documents.Document):
    """A compressed artifact measured in its runtime: its metric, the float artifact's of
    the same format (same run, same samples), the source model's, and the drop."""

    metric: str
    value: float | None  # None: identical to the reference (infinite SQNR)
    float_value: float | None
    float_artifact: str
    source_value: float | None
    drop: float | None  # top-1 fraction, float minus compressed (None without top-1)
    samples: int
    data: CheckData
    eval: EvalResult = field(metadata={"to_json": eval_summary})
    host: dict[str, Any]
    compress_seconds: float
    budget: BudgetOutcome | None = field(default=None, metadata={"omitted_when_none": True})


@dataclass
class CompressedArtifact(documents.Document):
    """One compressed artifact as ``manifest.json`` records it (the fields of
    :class:`~edgepipe.rundir.ArtifactRecord`), with typed metrics and tool record.

    The calibration it used is written inside its config (``config.calibration_used``)."""

    name: str
    path: str  # relative to OUT
    format: str
    precision: str
    size_bytes: int
    sha256: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    files: list[str]
    source: ModelSource  # the model it came from (LoadedModel.describe())
    config: dict[str, Any]  # the config that made it (CompressConfig.to_dict())
    calibration: CalibrationUsed | None
    tool: ToolRecord
    parity: dict[str, Any]
    metrics: ArtifactMetrics
    layout: dict[str, str] = field(default_factory=dict)
    created: str = ""
    preprocessing: Preprocessing | None = field(  # how its data was prepared (when known)
        default=None, metadata={"omitted_when_none": True})

    def to_dict(self) -> dict[str, Any]:
        document = super().to_dict()
        document["config"] = {**self.config, "calibration_used": document.pop("calibration")}
        return document

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *,
                  where: str | None = None) -> CompressedArtifact:
        document = dict(data)
        if isinstance(document.get("config"), Mapping):
            config = dict(document["config"])
            document.update(config=config, calibration=config.pop("calibration_used", None))
        return super().from_dict(document, where=where)

    def record(self) -> ArtifactRecord:
        """The manifest's record of this artifact."""
        return ArtifactRecord.from_dict(self.to_dict())


@dataclass
class CompressResult:
    """What a compress run produced: float and compressed artifacts, the source model's
    baseline, the samples measured on, and (with an accuracy budget) the per-layer
    sensitivity tables and the budget's outcome, per format; the formats that failed."""

    out: Path
    method: str
    artifacts: list[CompressedArtifact] = field(default_factory=list)
    float_artifacts: list[ArtifactRecord] = field(default_factory=list)
    baseline: EvalResult | None = None
    data: CheckData | None = None
    sensitivity: dict[str, SensitivityTable] | None = None  # per format, ranked layers
    budget: dict[str, BudgetOutcome] | None = None  # per format
    failed: list[FailedFormat] = field(default_factory=list)

    def float_artifact(self, name: str) -> ArtifactRecord:
        """The float artifact called ``name`` (a compressed one's ``tool.source_artifact``)."""
        return next(record for record in self.float_artifacts if record.name == name)

    def calibration(self) -> CalibrationUsed | None:
        """The calibration the artifacts used (the first that has one), if any."""
        return next((a.calibration for a in self.artifacts if a.calibration), None)

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "method": self.method,
                "artifacts": [a.to_dict() for a in self.artifacts],
                "float_artifacts": [r.to_dict() for r in self.float_artifacts],
                "baseline": None if self.baseline is None else self.baseline.to_dict(),
                "data": {} if self.data is None else self.data.to_dict(),
                "sensitivity": None if self.sensitivity is None else {
                    fmt: table.to_dict() for fmt, table in self.sensitivity.items()},
                "budget": None if self.budget is None else {
                    fmt: outcome.to_dict() for fmt, outcome in self.budget.items()},
                "failed": [f.to_dict() for f in self.failed]}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> CompressResult:
        baseline, data = document.get("baseline"), document.get("data")
        sensitivity, budget = document.get("sensitivity"), document.get("budget")
        return cls(Path(document["out"]), document["method"],
                   [CompressedArtifact.from_dict(a) for a in document.get("artifacts", [])],
                   [ArtifactRecord(**r) for r in document.get("float_artifacts", [])],
                   None if baseline is None else EvalResult.from_dict(baseline),
                   CheckData.from_dict(data) if data else None,
                   None if sensitivity is None else {
                       fmt: SensitivityTable.from_dict(t) for fmt, t in sensitivity.items()},
                   None if budget is None else {
                       fmt: BudgetOutcome.from_dict(b) for fmt, b in budget.items()},
                   [FailedFormat.from_dict(f) for f in document.get("failed", [])])
