"""What an export should produce: :class:`ExportConfig`, validated where it is made."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from edgepipe import formats as registry
from edgepipe.errors import InputError
from edgepipe.model.loaded import LoadedModel, check_artifact_name

# The formats edgepipe exports to when this module was imported (kept for callers that read
# it); validation asks the registry, :mod:`edgepipe.formats`, each time.
FORMATS = registry.export_formats()

# Parity tolerance per precision, as a fraction of each output's scale:
# an output passes when max|artifact - reference| <= atol * max(1, max|reference|).
# fp32: kernels differ in summation order and fused ops, a few ulps per layer that grow with
# depth; 1e-4 of the output scale leaves room for that and nothing more. fp16 weights keep
# ~3 decimal digits, and the rounding of every weight adds up across layers: 1e-2.
DEFAULT_ATOL = {"fp32": 1e-4, "fp16": 1e-2}


@dataclass
class ExportConfig:
    """Options of one export run (they are saved in ``manifest.json`` as given).

    ``atol`` None takes the default of each artifact's precision (:data:`DEFAULT_ATOL`).
    ``fp16`` compresses OpenVINO weights to fp16; ``nhwc`` makes TFLite 4-D inputs and
    outputs channel-last. Parity runs on ``batch`` x seeded random inputs (``seed``)
    unless the caller gives its own arrays. ``name`` is the stem of the artifact files
    (``NAME.onnx``; None: the model's name, e.g. the factory's).
    """

    formats: tuple[str, ...] = ("onnx",)
    opset: int | None = None
    dynamic_batch: bool = False
    simplify: bool = False
    nhwc: bool = False
    fp16: bool = False
    atol: float | None = None
    batch: int = 1
    seed: int = 0
    threads: int | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.name is not None:
            self.name = check_artifact_name(self.name)
        valid = registry.export_formats()
        formats = tuple(str(f).lower().strip() for f in self.formats)
        unknown = [f for f in formats if f not in valid]
        if unknown or not formats:
            raise InputError(
                f"Unknown export format {', '.join(map(repr, unknown))}." if unknown
                else "No export format was given.",
                hint=f"valid formats: {', '.join(valid)} (several allowed).",
                reference="unknown-format",
            )
        self.formats = tuple(dict.fromkeys(formats))  # keep order, drop repeats
        if self.atol is not None and not self.atol >= 0:  # also refuses NaN
            raise InputError(
                f"The tolerance --atol {self.atol} is negative.",
                hint="give a tolerance >= 0, as a fraction of the output scale (e.g. 1e-4); "
                "leave it out for the default of each precision "
                f"({', '.join(f'{k} {v:g}' for k, v in DEFAULT_ATOL.items())}).",
                reference="bad-tolerance",
            )
        if self.opset is not None and not 7 <= self.opset <= 25:
            raise InputError(f"--opset {self.opset} is outside the range ONNX knows (7-25).",
                             hint="leave --opset out for the exporter's default, or give 17-23.",
                             reference="bad-opset")
        if self.batch < 1:
            raise InputError(f"--batch-size {self.batch} must be at least 1.",
                             hint="give a positive batch size.", reference="bad-batch")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads {self.threads} must be at least 1.",
                             hint="leave it out to use every usable core.",
                             reference="bad-threads")

    def tolerance(self, precision: str) -> float:
        """The atol for an artifact of ``precision``: the user's, or the default."""
        if self.atol is not None:
            return self.atol
        return DEFAULT_ATOL.get(precision, DEFAULT_ATOL["fp16"])

    def stem(self, loaded: LoadedModel) -> str:
        """The stem of the artifact files made from ``loaded``: ``name``, or the model's."""
        return self.name or loaded.name

    def to_dict(self) -> dict[str, Any]:
        """The options as given; ``name`` only when one was given."""
        return {k: v for k, v in asdict(self).items() if k != "name" or v is not None}
