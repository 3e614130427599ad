"""What a binarized model buys, each figure labelled: storage (measured from the packed file,
against the float32 weights computed from the layer shapes), binary operations against float
MACs (computed from the layer shapes), and latency in ONNX Runtime (measured)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

RUNTIME_NOTE = (
    "ONNX Runtime on x86 has no binary (XNOR-popcount) kernels: the binary layers run as "
    "float convolutions on +-scale weights, so no speed-up is expected there; the storage "
    "saving of the packed file is real. Binary kernels exist in dedicated runtimes (Larq "
    "Compute Engine on Arm, FPGA dataflow such as FINN).")


def storage(layers: list[dict[str, Any]], packed: dict[str, Any], packed_path: Path,
            float_path: Path) -> dict[str, Any]:
    """Packed bytes (measured: the file, and per layer from its index) against float32."""
    per_layer = packed["layers"]
    binary = [item["layer"] for item in layers if item["kind"] == "binary"]
    float_binary = sum(item["float_bytes"] for item in layers if item["kind"] == "binary")
    packed_binary = sum(per_layer[name]["bytes"] for name in binary)
    float_all = sum(item["float_bytes"] for item in layers)
    file_bytes = packed_path.stat().st_size
    return {
        "packed_file": packed_path.name, "packed_file_bytes": file_bytes,
        "packed_file_bytes_kind": "measured (file size, header included)",
        "float_bytes": float_all, "float_bytes_kind": "computed: float32 weights + one bias "
        "per output channel (BatchNorm folded) of every Conv / Linear layer",
        "float_onnx_file_bytes": float_path.stat().st_size,
        "float_onnx_file_bytes_kind": "measured",
        "whole_model_ratio": round(float_all / file_bytes, 2),
        "binary_layers": binary, "binary_layers_packed_bytes": packed_binary,
        "binary_layers_packed_bytes_kind": "measured (byte counts of the packed file's index: "
        "sign bits, float16 scale, bias and threshold)",
        "binary_layers_float_bytes": float_binary,
        "binary_layers_ratio": round(float_binary / packed_binary, 2) if packed_binary else None,
        "per_layer": {name: {**per_layer[name],
                             "float_bytes": next(i["float_bytes"] for i in layers
                                                 if i["layer"] == name)} for name in per_layer},
    }


def operations(layers: list[dict[str, Any]]) -> dict[str, Any]:
    """Binary operations of the binary layers against the MACs of the float model."""
    float_macs = sum(item["macs"] for item in layers)
    xnor = sum(item["macs"] for item in layers
               if item["kind"] == "binary" and item["binary_input"])
    signed_adds = sum(item["macs"] for item in layers
                      if item["kind"] == "binary" and not item["binary_input"])
    int8 = sum(item["macs"] for item in layers if item["kind"] not in ("binary",))
    return {"kind": "computed from the layer shapes (one sample)",
            "float_macs": float_macs, "binary_ops_xnor_popcount": xnor,
            "binary_weight_signed_adds": signed_adds, "int8_macs": int8,
            "binary_share_of_macs": round((xnor + signed_adds) / float_macs, 4)
            if float_macs else None,
            "rule": "a binary layer with binary inputs does one XNOR-popcount per float MAC "
            "(64 per 64-bit word on a CPU with popcount); with real inputs, one signed addition "
            "per MAC (no multiplication); the 8-bit first and last layers keep int8 MACs"}


def latency(paths: dict[str, Path], sample: list[np.ndarray], threads: int | None,
            seconds: float = 1.0, warmup: int = 20) -> dict[str, Any]:
    """Batch-1 latency of each ONNX file in ONNX Runtime (measured, same sample and threads)."""
    import onnxruntime as ort

    from edgepipe.runtime.base import default_threads

    threads = threads or default_threads()
    results: dict[str, Any] = {}
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
        results[label] = {
            "file": path.name, "load_ms": round(load * 1e3, 3),
            "first_ms": round(first * 1e3, 3), "warmup": warmup, "count": len(times),
            **{k: round(v * 1e6, 2) for k, v in {
                "mean_us": statistics.fmean(times), "std_us": statistics.pstdev(times),
                "min_us": ordered[0], "p50_us": ordered[len(ordered) // 2],
                "p90_us": ordered[int(0.9 * (len(ordered) - 1))],
                "p99_us": ordered[int(0.99 * (len(ordered) - 1))], "max_us": ordered[-1]}.items()}}
    import onnxruntime

    ratio = results["float"]["p50_us"] / results["binary"]["p50_us"]
    return {"kind": "measured", "runtime": "onnxruntime", "version": onnxruntime.__version__,
            "threads": threads, "batch": 1, "results": results,
            "speedup_p50": round(ratio, 3), "note": RUNTIME_NOTE}
