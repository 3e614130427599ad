"""ONNX backend: static and dynamic int8 with ``onnxruntime.quantization``, fp16 with
``onnxruntime.transformers.float16``.

Static int8 runs ``quant_pre_process`` (shape inference and graph optimisation, as ONNX
Runtime advises) and ``quantize_static`` in QDQ format: int8 weights (per channel by
default) and uint8 activations (U8S8, ONNX Runtime's recommended pair on x86). The
quantizer works file to file, so it writes into the staging folder of ``job.path``.
Layers it does not quantize (an op it has no int8 kernel for, or one the user excluded)
stay float and are listed in the result; that is not an error.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.compress.base import Compressed, CompressJob
from edgepipe.compress.int8.config import Fp16Config, Int8DynamicConfig, Int8StaticConfig
from edgepipe.compress.onnx_layers import (
    COMPUTE_OPS,
    check_exclude,
    dynamic_float_layers,
    static_float_layers,
)
from edgepipe.errors import UnsupportedError, first_line
from edgepipe.export.base import log, quiet_tool
from edgepipe.progress import report

ENTROPY_BINS = 2048
_CALIBRATION = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}


def compress(job: CompressJob) -> Compressed:
    """Write ``job.path`` (.onnx) from the float ONNX artifact ``job.float_path``."""
    if isinstance(job.config, Int8StaticConfig):
        return _static(job, job.config)
    if isinstance(job.config, Int8DynamicConfig):
        return _dynamic(job, job.config)
    if isinstance(job.config, Fp16Config):
        return _fp16(job, job.config)
    raise UnsupportedError(f"The ONNX backend has no method {job.config.method!r}.",
                           hint="use int8, int8-dynamic or fp16.", reference="unknown-method")


def _static(job: CompressJob, config: Int8StaticConfig) -> Compressed:
    assert job.calibration is not None
    source, tool = _preprocess(job)
    cache = None
    if config.calibration == "entropy":
        names, batch = _graph_inputs(source)
        cache = _entropy_ranges(source, names, job.calibration, batch)
        tool["entropy_bins"] = ENTROPY_BINS
    return _quantize_static(job, source, tool, cache, config.exclude, job.path)


class StaticLayerwise:
    """Static int8 of one float model, again and again with different layers kept in float.

    ``quant_pre_process`` runs once, and calibration once: the first quantization saves the
    activation ranges in onnxruntime's calibration cache (a JSON file in staging) and every
    later one loads them, so N variants cost one calibration, not N.
    """

    precision, backup = "int8", "fp32"

    def __init__(self, job: CompressJob) -> None:
        import onnx

        assert isinstance(job.config, Int8StaticConfig) and job.calibration is not None
        self.job, self.config = job, job.config
        self.source, self.tool = _preprocess(job)
        self.cache = self.source.with_suffix(".calibration.json")
        if job.config.calibration == "entropy":
            names, batch = _graph_inputs(self.source)
            self.cache = _entropy_ranges(self.source, names, job.calibration, batch)
            self.tool["entropy_bins"] = ENTROPY_BINS
        nodes = onnx.load(str(self.source), load_external_data=False).graph.node
        self.nodes = [n.name for n in nodes if n.name]
        self.layers = [(n.name, n.op_type) for n in nodes
                       if n.op_type in COMPUTE_OPS and n.name not in job.config.exclude]

    def quantize(self, exclude: list[str], path: Path) -> Compressed:
        """Quantize with ``exclude`` (node names, beside the config's own) kept in float."""
        path.parent.mkdir(parents=True, exist_ok=True)
        names = tuple(dict.fromkeys([*self.config.exclude, *exclude]))
        return _quantize_static(self.job, self.source, dict(self.tool), self.cache, names, path)


def layerwise(job: CompressJob) -> StaticLayerwise:
    """The per-layer quantizer that sensitivity and the accuracy budget drive."""
    return StaticLayerwise(job)


def _quantize_static(job: CompressJob, source: Path, tool: dict[str, Any], cache: Path | None,
                     exclude: tuple[str, ...], path: Path) -> Compressed:
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    config = job.config
    assert isinstance(config, Int8StaticConfig) and job.calibration is not None
    check_exclude(source, exclude)
    extra: dict[str, Any] = {}
    if config.calibration == "percentile":
        extra["CalibPercentile"] = config.percentile
    method = getattr(CalibrationMethod, _CALIBRATION[config.calibration])
    names, batch = _graph_inputs(source)
    reader = _Reader(names, job.calibration, batch)
    try:
        with _quiet():
            quantize_static(str(source), str(path), reader, quant_format=QuantFormat.QDQ,
                            per_channel=config.per_channel, reduce_range=config.reduce_range,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=method, nodes_to_exclude=list(exclude),
                            extra_options=extra, calibration_cache_path=cache)
    except Exception as exc:
        raise UnsupportedError(
            f"onnxruntime.quantization could not quantize the model: {type(exc).__name__}: "
            f"{first_line(exc)}",
            hint="keep the failing layer in float with exclude=[NODE] (the node names are in "
            "the float .onnx), or try --method int8-dynamic or fp16; --debug shows the "
            "traceback.", reference="quantization-failed") from exc
    tool.update(quantizer="onnxruntime.quantization.quantize_static", format="QDQ",
                activations="uint8 (asymmetric)", weights="int8 (symmetric)",
                per_channel=config.per_channel, reduce_range=config.reduce_range,
                calibration=config.calibration, calibration_samples=reader.samples)
    left = static_float_layers(path, set(exclude))
    return Compressed(path, [path], "int8", tool, left)


def _dynamic(job: CompressJob, config: Int8DynamicConfig) -> Compressed:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, tool = _preprocess(job)
    check_exclude(source, config.exclude)
    try:
        with _quiet():
            quantize_dynamic(str(source), str(job.path), per_channel=config.per_channel,
                             reduce_range=config.reduce_range, weight_type=QuantType.QInt8,
                             nodes_to_exclude=list(config.exclude))
    except Exception as exc:
        raise UnsupportedError(
            f"onnxruntime.quantization could not quantize the model dynamically: "
            f"{type(exc).__name__}: {first_line(exc)}",
            hint="keep the failing layer in float with exclude=[NODE], or try fp16.",
            reference="quantization-failed") from exc
    tool.update(quantizer="onnxruntime.quantization.quantize_dynamic",
                weights="int8 (symmetric)", activations="uint8, quantized at run time",
                per_channel=config.per_channel, reduce_range=config.reduce_range)
    left = dynamic_float_layers(job.path, set(config.exclude))
    return Compressed(job.path, [job.path], "int8", tool, left)


def _fp16(job: CompressJob, config: Fp16Config) -> Compressed:
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.load(str(job.float_path))
    with _quiet():
        converted = convert_float_to_float16(model, keep_io_types=config.keep_io_types)
    onnx.save_model(converted, str(job.path))
    blocked = sorted({n.op_type for n in model.graph.node if n.op_type in DEFAULT_OP_BLOCK_LIST})
    left = [{"layer": n.name, "op": n.op_type,
             "reason": "onnxruntime's fp16 converter keeps this op in float32"}
            for n in model.graph.node if n.op_type in DEFAULT_OP_BLOCK_LIST
            and n.op_type in COMPUTE_OPS]
    tool = {"converter": "onnxruntime.transformers.float16.convert_float_to_float16",
            "version": version("onnxruntime"), "keep_io_types": config.keep_io_types,
            "float32_ops": blocked}
    return Compressed(job.path, [job.path], "fp16", tool, left)


def _entropy_ranges(source: Path, names: list[str], arrays: list[np.ndarray],
                    batch: int | None) -> Path:
    """Entropy (KL) ranges from a 2048-bin histogram, saved as onnxruntime's calibration cache.

    ``quantize_static`` runs its entropy calibrator with 128 histogram bins, as many as the
    quantized range, and takes no option to change that: the KL search then has a single
    candidate, the full range, and entropy gives min-max's scales exactly (measured on the
    digits MLP and CNN). Run the calibrator here with 2048 bins, as TensorRT's KL
    calibration does, and hand the ranges to ``quantize_static`` through its cache file.
    """
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    op_types = sorted(set(QLinearOpsRegistry) | set(QDQRegistry))  # quantize_static's default
    with _quiet():
        calibrator = create_calibrator(
            source, op_types, augmented_model_path=str(source.with_suffix(".augmented.onnx")),
            calibrate_method=CalibrationMethod.Entropy,
            extra_options={"num_bins": ENTROPY_BINS, "num_quantized_bins": 128})
        calibrator.collect_data(_Reader(names, arrays, batch))
        ranges = calibrator.compute_data()
    cache = source.with_suffix(".calibration.json")
    save_tensors_data(ranges, cache)
    return cache


def _preprocess(job: CompressJob) -> tuple[Path, dict[str, Any]]:
    """``quant_pre_process`` into staging; on failure, quantize the model as exported."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    target = job.path.with_name(job.path.stem + ".pre.onnx")
    tool: dict[str, Any] = {"version": version("onnxruntime")}
    try:
        # auto_merge: a text encoder's symbolic sequence meets the position table's fixed
        # length in the graph, and symbolic shape inference stops there without it. ORT
        # writes its debug files to the working directory when inference fails: a scratch
        # one keeps them out of the user's.
        with _quiet(), tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
            quant_pre_process(str(job.float_path.resolve()), str(target.resolve()),
                              auto_merge=True)
        tool["pre_process"] = "quant_pre_process"
        return target, tool
    except Exception as exc:
        log.warning("onnxruntime's quant_pre_process failed (%s); quantizing the model as "
                    "exported.", first_line(exc))
        tool["pre_process"] = f"skipped: {type(exc).__name__}: {first_line(exc)}"
        return job.float_path, tool


class _Reader:
    """onnxruntime's CalibrationDataReader over the calibration arrays.

    A model with a fixed batch B gets batches of exactly B (a short tail is dropped);
    a dynamic batch gets batches of 32.
    """

    def __init__(self, names: list[str], arrays: list[np.ndarray], fixed: int | None) -> None:
        self.names, self.arrays, self.fixed = names, arrays, fixed
        self.batch = fixed or 32
        count = len(arrays[0])
        self.samples = count - count % self.batch if fixed else count
        self._iter = self._batches()

    def _batches(self) -> Iterator[dict[str, np.ndarray]]:
        total = -(-self.samples // self.batch)
        for index, start in enumerate(range(0, self.samples, self.batch), 1):
            yield {n: a[start:start + self.batch]
                   for n, a in zip(self.names, self.arrays, strict=True)}
            report("calibration (onnx)", index, total, f"batch {index}/{total}")

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = self._batches()


def _graph_inputs(path: Path) -> tuple[list[str], int | None]:
    """The graph's input names (initializers aside) and its fixed batch, if any."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    names, fixed = [], None
    for value in graph.input:
        if value.name in initializers:
            continue
        names.append(value.name)
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            fixed = int(dims[0].dim_value)
    return names, fixed


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep onnxruntime.quantization's prints and root-logger warnings off the user's streams."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with quiet_tool("onnxruntime.quantization"):
            yield
    finally:
        root.setLevel(level)
