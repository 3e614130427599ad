"""The config of low-rank factorization (SVD / Tucker-2), with optional fine-tuning."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from edgepipe.compress.config_base import CompressConfig
from edgepipe.compress.config_training import TrainingOptions, check_training
from edgepipe.errors import InputError

RANK_SELECTIONS = ("energy", "ratio", "sensitivity")
RANK_TARGETS = ("params", "macs")


@dataclass
class LowRankConfig(TrainingOptions, CompressConfig):
    """Low-rank factorization: Linear and 1x1 convolutions by truncated SVD into two layers,
    kxk convolutions by Tucker-2 (1x1 -> kxk core -> 1x1). Depthwise and grouped
    convolutions are left whole.

    Ranks: ``energy`` keeps the smallest rank holding that share of each layer's squared
    singular values; ``ratio`` allocates ranks per layer (each layer whole or at one of a
    grid of energy levels, traded by a Lagrange multiplier) so that the model's ``target``
    (params or MACs) is at most ``ratio`` of the original with the least energy lost;
    ``sensitivity`` picks per layer the smallest rank whose drop, with only that layer
    factorized, stays within ``layer_drop`` points (measured on the calibration split).
    ``activation_aware`` computes the SVD basis of Linear / 1x1 layers from calibration
    activations (the weight times the square root of the inputs' second moment), which
    minimises the output error on those inputs rather than the weight error.
    ``latency_check`` times each factorized layer against the original in ONNX Runtime at
    its real input shape and keeps a layer whole when its factorized form is not
    ``min_speedup`` times faster (5% by default, above the timing noise of small layers).
    Ranks are rounded up to a multiple of ``rank_multiple``: CPU kernels block channels by
    8 or 16, and odd channel counts cost layout conversions between layers.
    ``epochs`` > 0 fine-tunes afterwards with knowledge distillation from the original.
    """

    method: ClassVar[str] = "lowrank"
    backends: ClassVar[dict[str, str]] = {
        "onnx": "edgepipe.compress.lowrank.backend",
        "openvino": "edgepipe.compress.lowrank.backend",
        "tflite": "edgepipe.compress.lowrank.backend"}
    needs_calibration: ClassVar[bool] = True
    formats: tuple[str, ...] = ("onnx",)
    energy: float | None = None
    ratio: float | None = None
    target: str = "params"
    rank_selection: str | None = None  # default: energy if given, else ratio (0.5)
    layer_drop: float = 0.5  # top-1 points (sensitivity selection)
    activation_aware: bool = True
    latency_check: bool = True
    min_speedup: float = 1.05  # factorized must be this much faster to be kept
    rank_multiple: int = 8  # ranks rounded up to a multiple of this (1: exact)
    epochs: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("energy", "ratio"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float))
                                          and not isinstance(value, bool)
                                          and math.isfinite(value) and 0 < value <= 1):
                raise InputError(f"--{name} {value!r} is outside (0, 1].",
                                 hint=f"give --{name} as a fraction, such as "
                                 f"{'0.9 (keep 90% of the energy)' if name == 'energy' else '0.5 (half the parameters)'}.",
                                 reference=f"bad-{name}")
        selection = self.rank_selection or ("energy" if self.energy is not None else "ratio")
        if selection not in RANK_SELECTIONS:
            raise InputError(f"Unknown rank selection {self.rank_selection!r}.",
                             hint=f"use one of: {', '.join(RANK_SELECTIONS)}.",
                             reference="bad-config")
        if selection == "energy" and self.energy is None:
            raise InputError("--rank-selection energy needs --energy.",
                             hint="give --energy 0.9 (the share of squared singular values "
                             "to keep).", reference="bad-config")
        if selection == "ratio" and self.ratio is None:
            self.ratio = 0.5
        self.rank_selection = selection
        if self.target not in RANK_TARGETS:
            raise InputError(f"Unknown ratio target {self.target!r}.",
                             hint=f"use one of: {', '.join(RANK_TARGETS)}.",
                             reference="bad-config")
        check_training(self)
        if not isinstance(self.rank_multiple, int) or not 1 <= self.rank_multiple <= 64:
            raise InputError(f"rank_multiple {self.rank_multiple!r} is outside 1-64.",
                             hint="8 suits x86 and Arm CPU kernels; 1 keeps exact ranks.",
                             reference="bad-config")
        if not (isinstance(self.min_speedup, (int, float)) and 0.5 <= self.min_speedup <= 10):
            raise InputError(f"min_speedup {self.min_speedup!r} is outside [0.5, 10].",
                             hint="1.0 keeps a factorized layer when it is faster at all.",
                             reference="bad-config")
