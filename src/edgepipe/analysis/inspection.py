"""``edgepipe inspect``'s whole job as one call: the model's summary, and on request a check
of DATA against it and MCUNetV2-style patch plans (see :func:`inspect`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgepipe.analysis.inspect import inspect_model
from edgepipe.analysis.summary import ModelSummary
from edgepipe.data import DatasetInfo, SplitsInfo
from edgepipe.errors import UnsupportedError
from edgepipe.model import LoadedModel, load_model

if TYPE_CHECKING:
    from edgepipe.analysis.patch_plan import PatchPlan  # imports torch

PATCH_MEMORY_MODEL = ("int8 activations; conv/pool hold input and output, BN and activations "
                      "in place, residual inputs held; input image streamed per patch")
PATCH_CHECK = "whole-model output with the best plan against the full-map run, in torch"


@dataclass(frozen=True)
class InspectConfig:
    """What to look at besides the summary: ``data`` (a DATA spec, Dataset or arrays) checked
    against the model and split with ``seed``; ``patch_plan``: plan patch-based execution."""

    data: Any = None
    normalize: str | None = None
    seed: int = 0
    patch_plan: bool = False


@dataclass
class DataCheck:
    """DATA as loaded for the model (it fits: anything else raised), and its seeded split."""

    dataset: DatasetInfo
    model_classes: int | None
    split: SplitsInfo

    def to_dict(self) -> dict[str, Any]:
        return {**self.dataset.to_dict(), "model_classes": self.model_classes,
                "split": self.split.to_dict()}


@dataclass
class PatchPlans:
    """The best patch plans (at most five), the first checked numerically in torch."""

    plans: list[PatchPlan]
    max_abs_diff: float
    output_scale: float

    def to_dict(self) -> dict[str, Any]:
        return {"plans": [p.to_dict() for p in self.plans], "check": {
            "max_abs_diff": self.max_abs_diff, "output_scale": self.output_scale,
            "what": PATCH_CHECK}, "memory_model": PATCH_MEMORY_MODEL}


@dataclass
class Inspection:
    """What ``edgepipe inspect`` shows. ``support`` is left to the caller (the operator
    check belongs to export, a layer above this one): anything with ``to_dict()``."""

    summary: ModelSummary
    data: DataCheck | None = None
    support: Any = None
    patch_plan: PatchPlans | None = None

    def to_dict(self) -> dict[str, Any]:
        document = self.summary.to_dict()
        for key in ("data", "support", "patch_plan"):
            value = getattr(self, key)
            if value is not None:
                document[key] = value.to_dict()
        return document


def inspect(model: LoadedModel | str, config: InspectConfig | None = None) -> Inspection:
    """Summarize ``model`` (a MODEL spec or LoadedModel); with ``config.data``, load the data
    for it (raising on anything that does not fit) and split it; with
    ``config.patch_plan``, plan and check patch-based execution."""
    config = config or InspectConfig()
    loaded = load_model(model) if isinstance(model, str) else model
    summary = inspect_model(loaded)
    inspection = Inspection(summary)
    if config.data is not None:
        inspection.data = check_data(config.data, loaded, summary, normalize=config.normalize,
                                     seed=config.seed)
    if config.patch_plan:
        inspection.patch_plan = patch_plans(loaded)
    return inspection


def check_data(data: Any, loaded: LoadedModel, summary: ModelSummary, *,
               normalize: str | None, seed: int) -> DataCheck:
    """Load DATA for the model (raising on anything that does not fit) and describe it."""
    from edgepipe.data import as_dataset, make_splits

    num_classes = classifier_classes(summary.outputs)
    dataset = as_dataset(data, loaded.inputs, num_classes, normalize=normalize,
                         tokenizer=loaded.tokenizer_folder)
    splits = make_splits(dataset, seed=seed)
    return DataCheck(dataset.describe(), num_classes, splits.describe())


def classifier_classes(outputs: list[dict[str, Any]]) -> int | None:
    """The class count of a classifier: the last dim of its single 2-D output, else None."""
    if len(outputs) == 1 and len(outputs[0]["shape"]) == 2:
        classes = outputs[0]["shape"][-1]
        return classes if isinstance(classes, int) and classes > 1 else None
    return None


def patch_plans(loaded: LoadedModel) -> PatchPlans:
    """The best patch plans of a torch CNN, the first checked numerically in torch."""
    from edgepipe.analysis.patch_plan import check, search

    spec = loaded.inputs[0]
    if loaded.module is None or len(loaded.inputs) != 1 or spec.rank != 4:
        raise UnsupportedError("--patch-plan needs a torch model with one image input.",
                               hint="give a torchvision CNN or a factory returning one.",
                               reference="patch-plan-unsupported")
    shape = tuple(int(d) for d in spec.concrete_shape(1)[1:])
    try:
        plans = search(loaded.module.eval(), shape)
    except ValueError as exc:
        raise UnsupportedError(str(exc), hint="patch plans cut a Sequential body of blocks.",
                               reference="patch-plan-unsupported") from exc
    if not plans:
        raise UnsupportedError("No block of the model's body can run patch by patch.",
                               hint="the first block already mixes the whole map.",
                               reference="patch-plan-unsupported")
    diff, scale = check(loaded.module, shape, plans[0].split, plans[0].grid)
    return PatchPlans(plans[:5], diff, scale)
