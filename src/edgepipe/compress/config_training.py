"""Configs of the methods that train a torch model: low-bit (wNaM, Brevitas), binary
(Brevitas, distillation) and low-rank (factorization, optional fine-tuning)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from edgepipe.compress.config_base import METHODS, CompressConfig, register
from edgepipe.errors import InputError

# Weight / activation bit widths that Brevitas' QCDQ ONNX export can write. 1 bit: the
# exporter refuses binary quantizers ("Binary quant not supported"; binary weights are the
# `binary` method's sign quantizer). Over 8 bits: it would write int32 QuantizeLinear, which
# ONNX's QuantizeLinear does not define and ONNX Runtime cannot run.
LOW_BIT_WIDTHS = range(2, 9)
LOW_BIT_METHOD = re.compile(r"^w(\d+)a(\d+)$")
LOW_BIT_EXAMPLES = ("w8a8", "w4a8", "w2a8")  # registered by name (the CLI offers these)


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


@dataclass
class LowBitConfig(TrainingOptions, CompressConfig):
    """Low-bit quantization with Brevitas: per-channel weights at ``weight_bits`` (2-8),
    activations at ``act_bits`` (8), exported as ONNX QCDQ. The method name is ``wNaM``.

    Post-training by default: activation ranges from ``calib_size`` calibration samples,
    then bias correction. ``qat`` fine-tunes the quantized model on the train split for up
    to ``epochs`` with knowledge distillation from the float model (KL on logits softened by
    ``distill_temperature``, weighted ``distill_weight``, plus cross-entropy when the data is
    labelled), stopping early on a validation slice of train (``val_fraction``). The first
    and last compute layers keep ``first_last_bits`` (8; None: the same as the others), a
    common practice: they hold few weights and lose the most accuracy.
    """

    method: ClassVar[str] = "w4a8"
    backends: ClassVar[dict[str, str]] = {"onnx": "edgepipe.compress.brevitas_quant"}
    needs_calibration: ClassVar[bool] = True
    weight_bits: int = 4
    act_bits: int = 8
    first_last_bits: int | None = 8
    qat: bool = False
    epochs: int = 10
    bias_correction: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("weight_bits", "act_bits", "first_last_bits"):
            value = getattr(self, name)
            if value is None and name == "first_last_bits":
                continue
            _check_bits(name, value)
        _check_training(self)
        # The instance's name says what it makes (w3a8 from w4a8 with weight_bits=3), for
        # file names and records.
        self.method = f"w{self.weight_bits}a{self.act_bits}"  # type: ignore[misc]


RANK_SELECTIONS = ("energy", "ratio", "sensitivity")
RANK_TARGETS = ("params", "macs")


for _name in LOW_BIT_EXAMPLES:  # the family's usual members, by name
    METHODS[_name] = LowBitConfig


@register
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
    backends: ClassVar[dict[str, str]] = {"onnx": "edgepipe.compress.lowrank", "openvino": "edgepipe.compress.lowrank", "tflite": "edgepipe.compress.lowrank"}
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
        _check_training(self)
        if not isinstance(self.rank_multiple, int) or not 1 <= self.rank_multiple <= 64:
            raise InputError(f"rank_multiple {self.rank_multiple!r} is outside 1-64.",
                             hint="8 suits x86 and Arm CPU kernels; 1 keeps exact ranks.",
                             reference="bad-config")
        if not (isinstance(self.min_speedup, (int, float)) and 0.5 <= self.min_speedup <= 10):
            raise InputError(f"min_speedup {self.min_speedup!r} is outside [0.5, 10].",
                             hint="1.0 keeps a factorized layer when it is faster at all.",
                             reference="bad-config")


@register
@dataclass
class BinaryConfig(TrainingOptions, CompressConfig):
    """Binarization with Brevitas: 1-bit weights with a per-output-channel scale (XNOR-Net:
    the mean |w| of the channel) and, with ``binary_activations``, sign activations with a
    straight-through estimator and a real-valued shortcut around each binary block (Bi-Real
    Net). The first and last compute layers keep ``first_last_bits`` (8, as BiBench does;
    None binarizes their weights too). Always trained: knowledge distillation from the float
    model (plus cross-entropy when the data is labelled) for up to ``epochs`` with a cosine
    learning rate, keeping the best epoch on a validation slice of train (``val_fraction``)
    and stopping after ``patience`` epochs without improvement.
    """

    method: ClassVar[str] = "binary"
    backends: ClassVar[dict[str, str]] = {"onnx": "edgepipe.compress.binary"}
    needs_calibration: ClassVar[bool] = True
    binary_activations: bool = True
    first_last_bits: int | None = 8
    epochs: int = 60
    lr: float = 2e-3
    # As many as the epochs: the validation slice (144 digits) is noisy, and stopping at a
    # lucky early epoch cuts the cosine schedule short (measured on the digits CNN: patience
    # 20 stopped at epoch 34, 93.0% top-1; the whole schedule gave 96.1%).
    patience: int = 60

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.binary_activations, bool):
            raise InputError(f"binary_activations {self.binary_activations!r} must be true or "
                             "false.", hint="give --binary-activations or "
                             "--no-binary-activations.", reference="bad-config")
        if self.first_last_bits is not None:
            _check_bits("first_last_bits", self.first_last_bits)
        _check_training(self)


def _check_training(config: Any) -> None:
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


def _check_bits(name: str, value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value in LOW_BIT_WIDTHS:
        return
    why = ("Brevitas' QCDQ export refuses 1-bit (binary) quantizers; binary weights are "
           "a sign quantizer, the `binary` method's work"
           if value in (0, 1) else
           "over 8 bits Brevitas' QCDQ export writes int32 QuantizeLinear nodes, which ONNX "
           "does not define and ONNX Runtime cannot run (16-bit models are best left in "
           "fp16 or float)" if isinstance(value, int) and value > 8 else "it is not a bit width")
    raise InputError(f"{name}={value!r} cannot be exported to ONNX QCDQ: {why}.",
                     hint=f"give {name} between {LOW_BIT_WIDTHS.start} and "
                     f"{LOW_BIT_WIDTHS.stop - 1} ({', '.join(LOW_BIT_EXAMPLES)}...).",
                     reference="bad-bit-width")
