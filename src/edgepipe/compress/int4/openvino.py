"""OpenVINO backend of int4-weight: ``nncf.compress_weights`` on the float IR.

``mode`` INT4_SYM (i4 weights) or INT4_ASYM (u4 weights with zero points), ``ratio=1.0``
(every layer NNCF would put in 4 bits gets 4 bits), the group size, and, data-aware, the
calibration samples with AWQ and scale estimation. A layer the group size does not divide
is named in NNCF's ignored scope (NNCF would otherwise refuse the whole model) and listed as
kept in float. ``keep_8bit``: True or None is NNCF's default (embeddings and the last layer
in 8 bits, ``all_layers=False``); False puts them in 4 bits too (``all_layers=True``).
The IR stores the 4-bit weights as u4/i4 constants with f16 scales; the CPU plugin runs
them with its int4 weight-decompression kernels. The accuracy budget's variants keep chosen
MatMuls in 8 bits (:class:`Int4Layerwise`).
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

from edgepipe.compress.base import Compressed, CompressJob
from edgepipe.compress.int4 import layers
from edgepipe.compress.int4.config import Int4WeightConfig
from edgepipe.compress.int4.tools import quantization_failed, quiet_logger
from edgepipe.compress.int8.openvino import _calibration_items
from edgepipe.export.base import quiet_tool
from edgepipe.runtime.openvino_runtime import import_openvino

_BITS = {"i4": 4, "u4": 4, "i8": 8, "u8": 8}


def compress(job: CompressJob) -> Compressed:
    """Write ``job.path`` (.xml + .bin with 4-bit weights) from the float IR."""
    return Int4Layerwise(job).quantize([], job.path)


def layerwise(job: CompressJob) -> Int4Layerwise:
    """The per-layer quantizer that sensitivity and the accuracy budget drive."""
    return Int4Layerwise(job)


class Int4Layerwise:
    """int4-weight of one float IR, again and again with different MatMuls kept in 8 bits.

    A variant with layers kept back is made in two ``compress_weights`` passes: INT8_ASYM
    (NNCF's own backup precision, per output channel) on the kept MatMuls, then the int4
    pass, which leaves weights that are already compressed as they are. NNCF's own 8-bit
    choice (embeddings and the last layer, unless ``keep_8bit`` is False) is found once, by
    the default pass, and made in the first pass too: the second runs with ``all_layers``, or
    it would take the last layer *it* sees for the model's.
    """

    precision, backup = "int4", "int8"

    def __init__(self, job: CompressJob) -> None:
        self.ov = import_openvino()
        config = job.config
        assert isinstance(config, Int4WeightConfig)
        self.job, self.config, self.group = job, config, config.group_for("openvino")
        model = self.ov.Core().read_model(str(job.float_path))
        self.shapes = {op.get_friendly_name(): _features(op) for op in model.get_ordered_ops()
                       if op.get_type_name() == "MatMul" and _features(op) is not None}
        self.odd = sorted(name for name, (k, _) in self.shapes.items() if k % self.group)
        self.layers = [(name, "MatMul") for name in self.shapes if name not in self.odd]
        self.nodes = [name for name, _ in self.layers]
        self._default_8bit: set[str] | None = None

    def default_8bit(self) -> set[str]:
        """The MatMuls NNCF's default pass puts in 8 bits (none with ``keep_8bit=False``)."""
        if self._default_8bit is None:
            found: set[str] = set()
            if self.config.keep_8bit is not False:
                probe = self.quantize([], self.job.path.parent / "default" / "probe.xml")
                found = {r["layer"] for r in probe.tool["weight_layers"] if r.get("bits") == 8}
                for path in probe.files:
                    path.unlink(missing_ok=True)
            self._default_8bit = found
        return self._default_8bit

    def quantize(self, kept: list[str], path: Path) -> Compressed:
        """Quantize with the MatMuls named in ``kept`` in 8 bits instead of 4."""
        ov, config, group, job = self.ov, self.config, self.group, self.job
        path.parent.mkdir(parents=True, exist_ok=True)
        model = ov.Core().read_model(str(job.float_path))
        try:
            import nncf

            options: dict[str, Any] = {}
            if self.odd:
                options["ignored_scope"] = nncf.IgnoredScope(names=self.odd)
            if config.data_aware:
                assert job.calibration is not None
                items = _calibration_items(model, job.calibration)
                options.update(dataset=nncf.Dataset(items), subset_size=len(items), awq=True,
                               scale_estimation=True)
            mode = (nncf.CompressWeightsMode.INT4_SYM if config.symmetric
                    else nncf.CompressWeightsMode.INT4_ASYM)
            with quiet_tool("nncf"), quiet_logger("nncf"):
                if kept:
                    eight = set(kept) | self.default_8bit()
                    others = [name for name in self.shapes if name not in eight]
                    types = ["Gather"] if config.keep_8bit is False else []
                    model = nncf.compress_weights(
                        model, mode=nncf.CompressWeightsMode.INT8_ASYM,
                        ignored_scope=nncf.IgnoredScope(names=others, types=types,
                                                        validate=False))
                compressed = nncf.compress_weights(
                    model, mode=mode, group_size=group, ratio=1.0,
                    all_layers=bool(kept) or config.keep_8bit is False, **options)
                ov.save_model(compressed, str(path), compress_to_fp16=False)
        except Exception as exc:
            raise quantization_failed("NNCF compress_weights", exc, "onnx") from exc
        rows = _rows(compressed, self.shapes, set(self.odd), set(kept), group)
        tool: dict[str, Any] = {
            "quantizer": "nncf.compress_weights (OpenVINO backend)", "version": version("nncf"),
            "openvino": ov.get_version().split("-")[0], "mode": mode.value, "ratio": 1.0,
            "group_size": group, "all_layers": config.keep_8bit is False,
            "algorithm": "AWQ + scale estimation" if config.data_aware else "round to nearest",
            "activations": "float", "weight_layers": rows, "layer_counts": layers.summary(rows)}
        if kept:
            tool["kept_8bit_first_pass"] = "INT8_ASYM, per output channel"
        if config.data_aware and job.calibration is not None:
            tool["calibration_samples"] = len(job.calibration[0])
        return Compressed(path, [path, path.with_suffix(".bin")], "int4", tool,
                          layers.left_in_float(rows))


def _features(op: Any) -> tuple[int, int] | None:
    """(input features, output features) of a MatMul with a constant 2-D weight."""
    weight = op.input_value(1)
    shape = weight.get_partial_shape()
    if not shape.is_static or shape.rank.get_length() != 2 or not _constant(weight.get_node()):
        return None
    rows, cols = (d.get_length() for d in shape)
    transposed = op.get_transpose_b()
    return (cols, rows) if transposed else (rows, cols)


def _constant(node: Any, depth: int = 0) -> bool:
    if node.get_type_name() == "Constant":
        return True
    return depth < 3 and node.get_type_name() == "Convert" and _constant(
        node.input_value(0).get_node(), depth + 1)


def _rows(model: Any, shapes: dict[str, tuple[int, int]], odd: set[str], kept: set[str],
          group: int) -> list[dict[str, Any]]:
    """Each MatMul of the float IR: the bits its weight constant has in the compressed one."""
    bits = {}
    for op in model.get_ordered_ops():
        if op.get_type_name() == "MatMul" and op.get_friendly_name() in shapes:
            bits[op.get_friendly_name()] = _weight_bits(op.input_value(1).get_node())
    rows = []
    for name, (k, n) in shapes.items():
        got = bits.get(name)
        if name in odd:
            rows.append(layers.kept(name, "MatMul", k, n, "float",
                                    layers.NOT_DIVISIBLE.format(k=k, g=group)))
        elif got == 4:
            rows.append(layers.quantized(name, "MatMul", k, n, 4, group))
        elif got == 8 and name in kept:
            rows.append(layers.quantized(name, "MatMul", k, n, 8, None, layers.BUDGET_8BIT))
        elif got == 8:
            rows.append(layers.kept(name, "MatMul", k, n, "8-bit",
                                    "NNCF keeps the embeddings and last layer in 8 bits "
                                    "(per output channel) unless --all-4bit"))
        else:
            rows.append(layers.kept(name, "MatMul", k, n, "float", "NNCF left it in float"))
    return rows


def _weight_bits(node: Any, depth: int = 0) -> int | None:
    """The bits of the integer constant behind a (decompressed) weight, if any."""
    if node.get_type_name() == "Constant":
        return _BITS.get(node.get_element_type().get_type_name())
    if depth > 6:
        return None
    for i in range(node.get_input_size()):
        found = _weight_bits(node.input_value(i).get_node(), depth + 1)
        if found:
            return found
    return None
