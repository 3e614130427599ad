"""The config of ``int4-weight``: 4-bit weights in groups along the input features,
activations left to the runtime (float, or quantized on the fly by LiteRT's kernels).

Not to be confused with ``wNaM`` (``w4a8``...), which quantizes weights *and* activations
with Brevitas and can train; ``int4-weight`` is post-training, weight-only, and made by the
runtime's own tool, so the artifact keeps that runtime's fast 4-bit kernels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from edgepipe.compress.config_base import CompressConfig
from edgepipe.errors import InputError

# The group size each format's tool prefers when none is given: ONNX Runtime's
# MatMulNBitsQuantizer and NNCF's compress_weights default to 128; ai-edge-quantizer's
# blockwise recipes use 32, as torchao's Int8DynamicActivationIntxWeightConfig does.
DEFAULT_GROUP_SIZE = {"onnx": 128, "openvino": 128, "tflite": 32, "executorch": 32}
# ai-edge-quantizer has one granularity per block size, and only these.
TFLITE_GROUP_SIZES = (32, 64, 128, 256)


@dataclass
class Int4WeightConfig(CompressConfig):
    """4-bit weight-only post-training compression.

    ``group_size``: input features that share one scale (a power of two; None: the format's
    default, :data:`DEFAULT_GROUP_SIZE`). A layer whose input features the group size does
    not divide is kept as it was (float) and listed with the reason; it is not an error.
    ``symmetric``: signed 4-bit weights without zero points (default) or unsigned with
    one zero point per group. ``data_aware``: the runtime's own data-aware algorithm on
    the calibration samples of --data (ONNX Runtime: GPTQ; NNCF: AWQ with scale estimation;
    ai-edge-quantizer: GPTQ; ExecuTorch: none, refused). ``keep_8bit``: the output head
    (and, for ONNX Runtime and NNCF, the embedding tables) in 8 bits (True), every layer in
    4 bits (False), or each tool's default (None: NNCF keeps them in 8 bits, ONNX Runtime
    keeps the embeddings float, ai-edge-quantizer and torchao put everything in 4 bits).
    """

    method: ClassVar[str] = "int4-weight"
    backends: ClassVar[dict[str, str]] = {
        "onnx": "edgepipe.compress.int4.ort", "openvino": "edgepipe.compress.int4.openvino",
        "tflite": "edgepipe.compress.int4.litert",
        "executorch": "edgepipe.compress.int4.executorch"}
    group_size: int | None = None
    symmetric: bool = True
    data_aware: bool = False
    keep_8bit: bool | None = None
    calib_size: int = 128

    def __post_init__(self) -> None:
        super().__post_init__()
        size = self.group_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int)
                                 or size <= 0 or size & (size - 1)):
            raise InputError(
                f"--group-size {size!r} is not a power of two above 0.",
                hint="give 32, 64, 128 or 256 (the input features that share one scale), "
                "or leave it out for each format's default (onnx and openvino 128, "
                "tflite and executorch 32).", reference="bad-group-size")
        if size is not None and "tflite" in self.formats and size not in TFLITE_GROUP_SIZES:
            raise InputError(
                f"--group-size {size} is not one ai-edge-quantizer offers for tflite.",
                hint=f"for tflite use {', '.join(map(str, TFLITE_GROUP_SIZES))}, or ask "
                "for onnx / openvino alone.", reference="bad-group-size")
        if self.data_aware and "executorch" in self.formats:
            raise InputError(
                "--data-aware is not available for executorch: torchao has no data-aware "
                "int4 algorithm that lowers to XNNPACK here.",
                hint="drop --data-aware for executorch (round to nearest), or ask for onnx, "
                "openvino or tflite alone.", reference="bad-config")
        if not self.symmetric and "executorch" in self.formats:
            raise InputError(
                "--asymmetric is not available for executorch: with zero points, the program "
                "lowered to XNNPACK gave wrong outputs (SQNR 4.2 dB against the float model on "
                "an MLP where symmetric gave 19.6 dB).",
                hint="keep --symmetric (the default) for executorch, or ask for onnx, openvino "
                "or tflite alone.", reference="bad-config")
        if not isinstance(self.calib_size, int) or self.calib_size < 1:
            raise InputError(f"--calib-size {self.calib_size} must be a positive sample count.",
                             hint="give a count such as 128.", reference="bad-calib-size")

    def group_for(self, fmt: str) -> int:
        """The group size used for ``fmt``: the one given, else the format's default."""
        return self.group_size or DEFAULT_GROUP_SIZE[fmt]
