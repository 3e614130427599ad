"""Is the factorized layer faster? Each one is timed against the original in ONNX Runtime.

The original layer and its factorized replacement are each exported alone to ONNX (the
TorchScript exporter: milliseconds per layer) at the input shape the layer sees in the
model (batch 1), opened in ONNX Runtime with the threads of the run, warmed up, then run
in alternating rounds so that drift in the machine's speed hits both alike; the medians
decide. A factorized layer that is not at least ``min_speedup`` times faster is kept whole.
Two small layers in sequence often lose to one: each extra op costs a kernel launch and a
pass over memory, which fewer MACs do not repay on small tensors.
"""

from __future__ import annotations

import io
import time
import warnings
from typing import Any

import numpy as np
import torch

from edgepipe.compress.lowrank.layers import factorized_module
from edgepipe.runtime.base import default_threads

ROUNDS = 5
ROUND_SECONDS = 0.04  # per side and round: enough runs to time each side ~0.2 s in all
MAX_RUNS = 200


def check_latency(plans: list[Any], threads: int | None, min_speedup: float) -> None:
    """Time every factorized plan; keep whole (with the reason) those not fast enough."""
    for plan in plans:
        if plan.decision != "factorized" or plan.ranks is None:
            continue
        candidate = plan.candidate
        original = candidate.module
        replacement = factorized_module(candidate, plan.ranks)
        times = time_pair(original, replacement, candidate.input_shape, threads)
        speedup = times["original_ms"] / times["factorized_ms"]
        plan.latency = {**times, "speedup": round(speedup, 3), "runtime": "onnxruntime",
                        "label": "measured"}
        if speedup < min_speedup:
            plan.decision = "kept whole"
            plan.reason = (f"factorized form not faster in ONNX Runtime: "
                           f"{times['factorized_ms']:.4f} ms vs {times['original_ms']:.4f} ms "
                           f"for the original (speed-up {speedup:.2f}x < {min_speedup:g}x)")
        else:
            plan.reason += f"; {speedup:.2f}x faster in ONNX Runtime"


def time_pair(original: torch.nn.Module, replacement: torch.nn.Module,
              input_shape: tuple[int, ...], threads: int | None) -> dict[str, Any]:
    """Median ms of each module in ONNX Runtime at ``input_shape`` (alternating rounds)."""
    x = np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)
    sessions = [_session(m, x, threads) for m in (original, replacement)]
    feeds = [{s.get_inputs()[0].name: x} for s in sessions]
    for session, feed in zip(sessions, feeds, strict=True):
        for _ in range(5):
            session.run(None, feed)
    one = max(_once(s, f) for s, f in zip(sessions, feeds, strict=True))
    runs = int(min(MAX_RUNS, max(5, ROUND_SECONDS / max(one, 1e-6))))
    samples: list[list[float]] = [[], []]
    for _ in range(ROUNDS):
        for index, (session, feed) in enumerate(zip(sessions, feeds, strict=True)):
            for _ in range(runs):
                started = time.perf_counter()
                session.run(None, feed)
                samples[index].append((time.perf_counter() - started) * 1e3)
    return {"original_ms": round(float(np.median(samples[0])), 5),
            "factorized_ms": round(float(np.median(samples[1])), 5),
            "runs_each": len(samples[0]), "threads": threads or default_threads(),
            "input_shape": list(input_shape)}


def _once(session: Any, feed: dict[str, np.ndarray]) -> float:
    started = time.perf_counter()
    session.run(None, feed)
    return time.perf_counter() - started


def _session(module: torch.nn.Module, x: np.ndarray, threads: int | None) -> Any:
    import onnxruntime as ort

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.from_numpy(x),), buffer, dynamo=False,
                          opset_version=17, input_names=["x"], output_names=["y"])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])


def time_artifacts(paths: list[Any], sample: list[np.ndarray], threads: int | None,
                   rounds: int = 5, seconds: float = 0.2) -> list[float]:
    """Median ms of each artifact in its own runtime, timed in alternating rounds."""
    from edgepipe.runtime import open_artifact

    sessions = [open_artifact(p, threads=threads) for p in paths]
    for session in sessions:
        for _ in range(5):
            session.run(sample)
    one = max(_once_session(s, sample) for s in sessions)
    runs = int(min(MAX_RUNS, max(3, seconds / max(one, 1e-6))))
    times: list[list[float]] = [[] for _ in sessions]
    for _ in range(rounds):
        for index, session in enumerate(sessions):
            for _ in range(runs):
                started = time.perf_counter()
                session.run(sample)
                times[index].append((time.perf_counter() - started) * 1e3)
    return [float(np.median(t)) for t in times]


def _once_session(session: Any, sample: list[np.ndarray]) -> float:
    started = time.perf_counter()
    session.run(sample)
    return time.perf_counter() - started
