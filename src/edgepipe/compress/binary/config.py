"""The config of binarization (1-bit weights, optionally sign activations), trained by
distillation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from edgepipe.compress.config_base import CompressConfig
from edgepipe.compress.config_training import TrainingOptions, check_training
from edgepipe.compress.lowbit.config import check_bits
from edgepipe.errors import InputError


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
    backends: ClassVar[dict[str, str]] = {"onnx": "edgepipe.compress.binary.backend"}
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
            check_bits("first_last_bits", self.first_last_bits)
        check_training(self)
