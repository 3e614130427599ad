"""Configs of the post-training methods that ONNX Runtime, OpenVINO (NNCF) and LiteRT
quantize: static int8 (calibrated), dynamic int8, and fp16 (which the same three backends
write)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from edgepipe.compress.config_base import CompressConfig
from edgepipe.errors import InputError

CALIBRATIONS = ("minmax", "percentile", "entropy")


@dataclass
class Int8StaticConfig(CompressConfig):
    """Static int8 post-training quantization: int8 weights and activations, calibrated.

    ``calibration`` picks how activation ranges are set from the calibration samples:
    ``minmax`` (observed range), ``percentile`` (clip to ``percentile``), ``entropy``
    (KL-divergence threshold). ``per_channel`` gives each output channel its own weight
    scale. ``reduce_range`` quantizes weights to 7 bits: x86 CPUs without VNNI multiply
    uint8 x int8 pairs into int16 with saturation (VPMADDUBSW), which full 8-bit per-channel
    weights overflow (measured on the digits CNN: 92.8% top-1 instead of 98.1%); 7-bit
    weights cannot. Turn it off for targets with VNNI, AMX or Arm dot-product instructions.
    """

    method: ClassVar[str] = "int8"
    needs_calibration: ClassVar[bool] = True
    backends: ClassVar[dict[str, str]] = {
        "onnx": "edgepipe.compress.int8.ort", "openvino": "edgepipe.compress.int8.openvino",
        "tflite": "edgepipe.compress.int8.litert",
        "executorch": "edgepipe.compress.int8.executorch"}
    calibration: str = "minmax"
    per_channel: bool = True
    reduce_range: bool = True
    calib_size: int = 256
    percentile: float = 99.999
    allow_random_calibration: bool = False
    exclude: tuple[str, ...] = ()  # node / layer names to keep in float

    def __post_init__(self) -> None:
        super().__post_init__()
        calibration = str(self.calibration).lower().strip()
        if calibration not in CALIBRATIONS:
            raise InputError(f"Unknown calibration method {self.calibration!r}.",
                             hint=f"use one of: {', '.join(CALIBRATIONS)}.",
                             reference="bad-calibration")
        self.calibration = calibration
        if not isinstance(self.calib_size, int) or self.calib_size < 1:
            raise InputError(f"--calib-size {self.calib_size} must be a positive sample count.",
                             hint="give a count such as 256 (100-1000 samples is typical).",
                             reference="bad-calib-size")
        if not (isinstance(self.percentile, (int, float)) and math.isfinite(self.percentile)
                and 90.0 <= self.percentile <= 100.0):
            raise InputError(f"percentile {self.percentile} is outside [90, 100].",
                             hint="give the percentile of |activation| to keep, such as 99.999.",
                             reference="bad-percentile")
        self.exclude = tuple(self.exclude)


@dataclass
class Int8DynamicConfig(CompressConfig):
    """Dynamic int8: int8 weights; activations quantized at run time (no calibration).

    ``reduce_range`` is off by default: ONNX Runtime's dynamic kernels measured no
    saturation on an AVX2 CPU without VNNI (the digits MLP and CNN kept their top-1).
    """

    method: ClassVar[str] = "int8-dynamic"
    backends: ClassVar[dict[str, str]] = {"onnx": "edgepipe.compress.int8.ort"}
    per_channel: bool = True
    reduce_range: bool = False
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        self.exclude = tuple(self.exclude)


@dataclass
class Fp16Config(CompressConfig):
    """fp16 weights (and fp16 compute where the runtime has fp16 kernels).

    Inputs and outputs stay float32 (``keep_io_types``): users and data pipelines feed
    float32, and the casts at the edges cost next to nothing. OpenVINO and TFLite keep
    float32 IO in any case; ``keep_io_types=False`` (fp16 IO) applies to ONNX only.
    """

    method: ClassVar[str] = "fp16"
    backends: ClassVar[dict[str, str]] = {
        "onnx": "edgepipe.compress.int8.ort", "openvino": "edgepipe.compress.int8.openvino",
        "tflite": "edgepipe.compress.int8.litert"}
    keep_io_types: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        others = [f for f in self.formats if f != "onnx"]
        if not self.keep_io_types and others:
            raise InputError(
                f"fp16 inputs and outputs (keep_io_types=False) apply to ONNX only; the formats "
                f"also include {', '.join(others)}.",
                hint="keep float32 IO (the default), or ask for --format onnx alone.",
                reference="bad-config")
