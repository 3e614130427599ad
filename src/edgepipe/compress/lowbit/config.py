"""The config of low-bit quantization with Brevitas (``wNaM``): the method family, its bit
widths and their check."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from edgepipe.compress.config_base import CompressConfig
from edgepipe.compress.config_training import TrainingOptions, check_training
from edgepipe.errors import InputError

# Weight / activation bit widths that Brevitas' QCDQ ONNX export can write. 1 bit: the
# exporter refuses binary quantizers ("Binary quant not supported"; binary weights are the
# `binary` method's sign quantizer). Over 8 bits: it would write int32 QuantizeLinear, which
# ONNX's QuantizeLinear does not define and ONNX Runtime cannot run.
LOW_BIT_WIDTHS = range(2, 9)
LOW_BIT_METHOD = re.compile(r"^w(\d+)a(\d+)$")
LOW_BIT_EXAMPLES = ("w8a8", "w4a8", "w2a8")  # registered by name in compress/config.py


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
    backends: ClassVar[dict[str, str]] = {"onnx": "edgepipe.compress.lowbit.brevitas"}
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
            check_bits(name, value)
        check_training(self)
        # The instance's name says what it makes (w3a8 from w4a8 with weight_bits=3), for
        # file names and records.
        self.method = f"w{self.weight_bits}a{self.act_bits}"  # type: ignore[misc]


def check_bits(name: str, value: Any) -> None:
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
