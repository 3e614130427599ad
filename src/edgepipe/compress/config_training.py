"""What the configs of the methods that train a torch model share (low-bit with --qat,
binary, low-rank with fine-tuning): the calibration and distillation-training settings and
their checks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from edgepipe.errors import InputError


@dataclass
class TrainingOptions:
    """Calibration and distillation-training settings of the methods that train
    (:mod:`edgepipe.compress.distill`): Adam at ``lr``, KL on logits softened by
    ``distill_temperature`` weighted ``distill_weight`` (plus cross-entropy with labels),
    early stopping after ``patience`` epochs on a ``val_fraction`` slice of train."""

    lr: float = 5e-4
    batch_size: int = 64
    distill_temperature: float = 4.0
    distill_weight: float = 0.5
    patience: int = 3
    val_fraction: float = 0.1
    calib_size: int = 256


def check_training(config: Any) -> None:
    """The training fields shared by the methods that train (wNaM --qat, lowrank, binary)."""
    checks = [("epochs", config.epochs, 0 if config.method == "lowrank" else 1),
              ("batch_size", config.batch_size, 1), ("patience", config.patience, 1),
              ("calib_size", config.calib_size, 1)]
    for name, value, low in checks:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise InputError(f"{name} {value!r} must be an integer of at least {low}.",
                             hint=f"give a positive {name}.", reference="bad-config")
    ranges = [("lr", config.lr, 0.0, 1.0), ("distill_weight", config.distill_weight, 0.0, 1.0),
              ("distill_temperature", config.distill_temperature, 0.0, 100.0),
              ("val_fraction", config.val_fraction, 0.0, 0.5)]
    for name, value, low, high in ranges:
        if not (isinstance(value, (int, float)) and math.isfinite(value)
                and low <= value <= high and (value > 0 or name == "distill_weight")):
            raise InputError(f"{name} {value!r} is outside its range ({low} to {high}).",
                             hint=f"the default is {name}={getattr(type(config), name)}.",
                             reference="bad-config")
