"""What the configs of the methods that train a torch model share (low-bit with --qat,
binary, low-rank with fine-tuning): the calibration and distillation-training settings and
their checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgepipe.training_settings import TRAINING_LIMITS, DistillSettings, check_limits


@dataclass
class TrainingOptions(DistillSettings):
    """Calibration and distillation-training settings of the methods that train
    (:mod:`edgepipe.compress.distill`): :class:`~edgepipe.training_settings.DistillSettings` and
    the number of calibration samples."""

    calib_size: int = 256


def check_training(config: Any) -> None:
    """The training fields shared by the methods that train (wNaM --qat, lowrank, binary)."""
    low = 0 if config.method == "lowrank" else 1
    check_limits(config, {
        "epochs": (int, low, 100_000, f"a whole number of epochs >= {low}"),
        **TRAINING_LIMITS, "calib_size": (int, 1, 1 << 24, "a whole number >= 1")})
