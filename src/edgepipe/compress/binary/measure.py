"""What a binarized model buys, each figure labelled: storage (measured from the packed file,
against the float32 weights computed from the layer shapes), binary operations against float
MACs (computed from the layer shapes), and latency in ONNX Runtime (measured)."""

from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.compress.document import Document

RUNTIME_NOTE = (
    "ONNX Runtime on x86 has no binary (XNOR-popcount) kernels: the binary layers run as "
    "float convolutions on +-scale weights, so no speed-up is expected there; the storage "
    "saving of the packed file is real. Binary kernels exist in dedicated runtimes (Larq "
    "Compute Engine on Arm, FPGA dataflow such as FINN).")


@dataclass
class BinaryStorage:
    """The packed file's bytes (measured) against float32 weights (computed), whole model
    and binarized layers; ``per_layer``: each packed layer's byte counts."""

    packed_file: str
    packed_file_bytes: int
    float_bytes: int
    float_onnx_file_bytes: int
    whole_model_ratio: float
    binary_layers: list[str]
    binary_layers_packed_bytes: int
    binary_layers_float_bytes: int
    binary_layers_ratio: float | None
    per_layer: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "packed_file": self.packed_file, "packed_file_bytes": self.packed_file_bytes,
            "packed_file_bytes_kind": "measured (file size, header included)",
            "float_bytes": self.float_bytes, "float_bytes_kind": "computed: float32 weights "
            "+ one bias per output channel (BatchNorm folded) of every Conv / Linear layer",
            "float_onnx_file_bytes": self.float_onnx_file_bytes,
            "float_onnx_file_bytes_kind": "measured",
            "whole_model_ratio": self.whole_model_ratio,
            "binary_layers": self.binary_layers,
            "binary_layers_packed_bytes": self.binary_layers_packed_bytes,
            "binary_layers_packed_bytes_kind": "measured (byte counts of the packed file's "
            "index: sign bits, float16 scale, bias and threshold)",
            "binary_layers_float_bytes": self.binary_layers_float_bytes,
            "binary_layers_ratio": self.binary_layers_ratio, "per_layer": self.per_layer}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> BinaryStorage:
        return cls(**_fields_of(cls, document))


@dataclass
class BinaryOperations:
    """Binary operations of the binary layers against the float model's MACs (computed)."""

    float_macs: int
    binary_ops_xnor_popcount: int
    binary_weight_signed_adds: int
    int8_macs: int
    binary_share_of_macs: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "computed from the layer shapes (one sample)",
                "float_macs": self.float_macs,
                "binary_ops_xnor_popcount": self.binary_ops_xnor_popcount,
                "binary_weight_signed_adds": self.binary_weight_signed_adds,
                "int8_macs": self.int8_macs, "binary_share_of_macs": self.binary_share_of_macs,
                "rule": "a binary layer with binary inputs does one XNOR-popcount per float "
                "MAC (64 per 64-bit word on a CPU with popcount); with real inputs, one signed "
                "addition per MAC (no multiplication); the 8-bit first and last layers keep "
                "int8 MACs"}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> BinaryOperations:
        return cls(**_fields_of(cls, document))


@dataclass
class LatencyStats(Document):
    """Batch-1 latency of one ONNX file in ONNX Runtime (measured)."""

    file: str
    load_ms: float
    first_ms: float
    warmup: int
    count: int
    mean_us: float
    std_us: float
    min_us: float
    p50_us: float
    p90_us: float
    p99_us: float
    max_us: float


@dataclass
class BinaryLatency:
    """The float and binary files timed against each other (same sample and threads)."""

    version: str
    threads: int
    results: dict[str, LatencyStats]  # "float", "binary"
    speedup_p50: float
    note: str = RUNTIME_NOTE
    batch: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "measured", "runtime": "onnxruntime", "version": self.version,
                "threads": self.threads, "batch": self.batch,
                "results": {k: v.to_dict() for k, v in self.results.items()},
                "speedup_p50": self.speedup_p50, "note": self.note}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> BinaryLatency:
        return cls(document["version"], document["threads"],
                   {k: LatencyStats.from_dict(v) for k, v in document["results"].items()},
                   document["speedup_p50"], document["note"], document["batch"])


def _fields_of(cls: type, document: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``document`` that are fields of ``cls`` (the fixed labels are not)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in document.items() if k in names}


def storage(layers: list[dict[str, Any]], packed: dict[str, Any], packed_path: Path,
            float_path: Path) -> BinaryStorage:
    """Packed bytes (measured: the file, and per layer from its index) against float32."""
    per_layer = packed["layers"]
    binary = [item["layer"] for item in layers if item["kind"] == "binary"]
    float_binary = sum(item["float_bytes"] for item in layers if item["kind"] == "binary")
    packed_binary = sum(per_layer[name]["bytes"] for name in binary)
    float_all = sum(item["float_bytes"] for item in layers)
    file_bytes = packed_path.stat().st_size
    return BinaryStorage(
        packed_path.name, file_bytes, float_all, float_path.stat().st_size,
        round(float_all / file_bytes, 2), binary, packed_binary, float_binary,
        round(float_binary / packed_binary, 2) if packed_binary else None,
        {name: {**per_layer[name], "float_bytes": next(i["float_bytes"] for i in layers
                                                       if i["layer"] == name)}
         for name in per_layer})


def operations(layers: list[dict[str, Any]]) -> BinaryOperations:
    """Binary operations of the binary layers against the MACs of the float model."""
    float_macs = sum(item["macs"] for item in layers)
    xnor = sum(item["macs"] for item in layers
               if item["kind"] == "binary" and item["binary_input"])
    signed_adds = sum(item["macs"] for item in layers
                      if item["kind"] == "binary" and not item["binary_input"])
    int8 = sum(item["macs"] for item in layers if item["kind"] not in ("binary",))
    return BinaryOperations(float_macs, xnor, signed_adds, int8,
                            round((xnor + signed_adds) / float_macs, 4) if float_macs else None)


def latency(paths: dict[str, Path], sample: list[np.ndarray], threads: int | None,
            seconds: float = 1.0, warmup: int = 20) -> BinaryLatency:
    """Batch-1 latency of each ONNX file in ONNX Runtime (measured, same sample and threads)."""
    import onnxruntime as ort

    from edgepipe.runtime.base import default_threads

    threads = threads or default_threads()
    results: dict[str, LatencyStats] = {}
    for label, path in paths.items():
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        started = time.perf_counter()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        load = time.perf_counter() - started
        feed = {i.name: a for i, a in zip(session.get_inputs(), sample, strict=True)}
        started = time.perf_counter()
        session.run(None, feed)
        first = time.perf_counter() - started
        for _ in range(warmup):
            session.run(None, feed)
        times: list[float] = []
        stop = time.perf_counter() + seconds
        while time.perf_counter() < stop or len(times) < 50:
            started = time.perf_counter()
            session.run(None, feed)
            times.append(time.perf_counter() - started)
        ordered = sorted(times)
        results[label] = LatencyStats(
            path.name, round(load * 1e3, 3), round(first * 1e3, 3), warmup, len(times),
            *(round(v * 1e6, 2) for v in (
                statistics.fmean(times), statistics.pstdev(times), ordered[0],
                ordered[len(ordered) // 2], ordered[int(0.9 * (len(ordered) - 1))],
                ordered[int(0.99 * (len(ordered) - 1))], ordered[-1])))
    import onnxruntime

    ratio = results["float"].p50_us / results["binary"].p50_us
    return BinaryLatency(onnxruntime.__version__, threads, results, round(ratio, 3))
