"""The settings every training step shares, and their check: a module without torch, so
the configs that hold them (and ``edgepipe --help``) load fast."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

from edgepipe.errors import InputError
from edgepipe.json_types import JsonObject, JsonValue

# name: (kind, lowest, highest, what it takes) of the settings of a training step.
TRAINING_LIMITS: dict[str, tuple[type, float, float, str]] = {
    "lr": (float, 1e-12, 10.0, "a learning rate > 0 (e.g. 0.002)"),
    "batch_size": (int, 1, 1 << 16, "a whole number >= 1"),
    "distill_temperature": (float, 1e-6, 1e3, "a temperature > 0 (e.g. 4)"),
    "distill_weight": (float, 0.0, 1.0, "a weight between 0 and 1"),
    "patience": (int, 1, 100_000, "a whole number of epochs >= 1"),
    "val_fraction": (float, 0.01, 0.9, "a fraction between 0.01 and 0.9"),
}

# Old spellings of training settings, still read (with a warning) for one release.
RENAMED = {"temperature": "distill_temperature", "kd_weight": "distill_weight"}


@dataclass
class DistillSettings:
    """The settings every training step shares (compress's methods that train, split's
    head distillation and fine-tuning): Adam at ``lr`` on batches of ``batch_size``, the
    knowledge-distillation loss on logits softened by ``distill_temperature`` weighted
    ``distill_weight`` (plus cross-entropy with labels), early stopping after ``patience``
    epochs without improvement on a ``val_fraction`` slice of the training data."""

    lr: float = 5e-4
    batch_size: int = 64
    distill_temperature: float = 4.0
    distill_weight: float = 0.5
    patience: int = 3
    val_fraction: float = 0.1


def check_limits(settings: object, limits: Mapping[str, tuple[type, float, float, str]]) -> None:
    """InputError ``bad-training-option`` for the first setting outside its limits (NaN
    included), named as its option and recipe key."""
    for name, (kind, low, high, what) in limits.items():
        value = getattr(settings, name)
        number = isinstance(value, int | float) and not isinstance(value, bool) \
            and (kind is float or float(value).is_integer())
        if not number or not low <= value <= high:
            flag = "--" + name.replace("_", "-")
            raise InputError(f"{flag} {value!r} is out of range: it takes {what}.",
                             hint=f"give {flag} (recipe option {name}) {what}.",
                             reference="bad-training-option")


def renamed_settings(options: Mapping[str, JsonValue]) -> JsonObject:
    """``options`` with the old spellings of :data:`RENAMED` replaced, warning once each."""
    values = dict(options)
    for old, new in RENAMED.items():
        if old in values:
            warnings.warn(f"the training option '{old}' is now '{new}'; '{old}' will stop "
                          f"working in the next release.", FutureWarning, stacklevel=3)
            values.setdefault(new, values.pop(old))
            values.pop(old, None)
    return values
