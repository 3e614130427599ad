"""One small config per compression method, each validated where it is made.

A config says what it produces; :func:`edgepipe.compress.compress` applies any of them
through a registry keyed by the config's type. Configs round-trip through JSON
(:meth:`CompressConfig.to_dict` / :func:`config_from_dict`), so the manifest records
exactly what ran. Every method names the formats it writes; the backend follows from the
format (ONNX: onnxruntime's tools, OpenVINO: openvino/nncf, TFLite: litert-torch).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from edgepipe.compress.config_base import METHODS, CompressConfig, register
from edgepipe.compress.config_training import (
    LOW_BIT_EXAMPLES,
    LOW_BIT_METHOD,
    LOW_BIT_WIDTHS,
    BinaryConfig,
    LowBitConfig,
    LowRankConfig,
    TrainingOptions,
)
from edgepipe.errors import InputError

CALIBRATIONS = ("minmax", "percentile", "entropy")


@register
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
    backends: ClassVar[dict[str, str]] = {"onnx": "edgepipe.compress.ort_quant", "openvino": "edgepipe.compress.openvino_quant", "tflite": "edgepipe.compress.litert_quant"}
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


@register
@dataclass
class Int8DynamicConfig(CompressConfig):
    """Dynamic int8: int8 weights; activations quantized at run time (no calibration).

    ``reduce_range`` is off by default: ONNX Runtime's dynamic kernels measured no
    saturation on an AVX2 CPU without VNNI (the digits MLP and CNN kept their top-1).
    """

    method: ClassVar[str] = "int8-dynamic"
    backends: ClassVar[dict[str, str]] = {"onnx": "edgepipe.compress.ort_quant"}
    per_channel: bool = True
    reduce_range: bool = False
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        self.exclude = tuple(self.exclude)


@register
@dataclass
class Fp16Config(CompressConfig):
    """fp16 weights (and fp16 compute where the runtime has fp16 kernels).

    Inputs and outputs stay float32 (``keep_io_types``): users and data pipelines feed
    float32, and the casts at the edges cost next to nothing. OpenVINO and TFLite keep
    float32 IO in any case; ``keep_io_types=False`` (fp16 IO) applies to ONNX only.
    """

    method: ClassVar[str] = "fp16"
    backends: ClassVar[dict[str, str]] = {"onnx": "edgepipe.compress.ort_quant", "openvino": "edgepipe.compress.openvino_quant", "tflite": "edgepipe.compress.litert_quant"}
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


def method_names() -> tuple[str, ...]:
    """Every method name the CLI offers: the registered ones (wNaM's usual members among
    them; any other N, M is also taken by :func:`make_config`), post-training ones first."""
    return tuple(sorted(METHODS, key=lambda name: issubclass(METHODS[name], TrainingOptions)))


def config_class(method: str) -> type[CompressConfig]:
    """The config class of ``method`` (``wNaM``: LowBitConfig); KeyError if none."""
    return LowBitConfig if LOW_BIT_METHOD.match(str(method)) else METHODS[method]


def method_formats(method: str) -> tuple[str, ...]:
    """The formats ``method`` can write (its config class's backends)."""
    return tuple(config_class(method).backends)


def config_from_dict(document: dict[str, Any]) -> CompressConfig:
    """A config from :meth:`CompressConfig.to_dict`'s output (e.g. read from a manifest)."""
    data = dict(document)
    method = data.pop("method", None)
    if method not in METHODS:
        raise InputError(f"Unknown compression method {method!r}.",
                         hint=f"methods: {', '.join(method_names())}.", reference="unknown-method")
    return make_config(method, **data)


def make_config(method: str, **options: Any) -> CompressConfig:
    """The config of ``method`` from keyword options; an option the method lacks is an error."""
    family = LOW_BIT_METHOD.match(str(method))
    if family:  # wNaM: N and M are the defaults of weight_bits and act_bits
        options.setdefault("weight_bits", int(family[1]))
        options.setdefault("act_bits", int(family[2]))
    elif method not in METHODS:
        raise InputError(f"Unknown compression method {method!r}.",
                         hint=f"methods: {', '.join(method_names())} (wNaM: any N, M).",
                         reference="unknown-method")
    cls = config_class(method)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(
            f"{', '.join(unknown)} do{'es' if len(unknown) == 1 else ''} not apply to "
            f"--method {method}.",
            hint=f"--method {method} takes: {', '.join(sorted(known))}.",
            reference="option-not-for-method")
    for key in ("formats", "exclude"):
        if key in options and isinstance(options[key], list):
            options[key] = tuple(options[key])
    return cls(**options)


__all__ = ["CALIBRATIONS", "LOW_BIT_EXAMPLES", "LOW_BIT_METHOD", "LOW_BIT_WIDTHS", "METHODS", "BinaryConfig",
           "CompressConfig", "Fp16Config", "Int8DynamicConfig", "Int8StaticConfig",
           "LowBitConfig", "LowRankConfig", "TrainingOptions", "config_class",
           "config_from_dict", "make_config", "method_formats", "method_names", "register"]
