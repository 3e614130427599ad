"""Benchmark: does ``edgepipe profile`` agree with the runtimes' own benchmark tools?

For each model (the bundled digits CNN, torchvision resnet18 and mobilenet_v2 at 224x224,
random weights), the OpenVINO IR and the .tflite are profiled on ``host`` by edgepipe and
by the vendor tool, with the same threads, interleaved (edgepipe, tool, edgepipe, tool...)
so that drift of the machine hits both alike:

- OpenVINO: ``benchmark_app -d CPU -hint none -api sync -nstreams 1 -nthreads T
  -infer_precision f32`` (one stream, one synchronous request: the latency setup; its UI
  refuses -nthreads together with -hint latency). Its median comes from OpenVINO's own
  per-request timer; edgepipe reports both its wall clock around the call and that timer.
- LiteRT: ``litert-benchmark --num_threads T`` (ai-edge-litert's CompiledModel API, times
  ``run_by_name`` with perf_counter, rounds to 0.01 ms); edgepipe times the Interpreter's
  ``invoke``.

The figure compared is the median (p50) of each round. The difference is the median over
rounds of the ratio of the two p50s taken back to back, so that slow drift of a shared
machine cancels; the tool's own spread across rounds is printed as the noise floor.
Goal: within 5%.

    PYTHONPATH=src python benchmarks/profile_fidelity.py [--threads 2] [--rounds 6]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = [("builtin:digits-cnn", None), ("torchvision:resnet18", "1x3x224x224"),
          ("torchvision:mobilenet_v2", "1x3x224x224")]


def benchmark_app(xml: Path, threads: int, seconds: float) -> float:
    """benchmark_app's median latency in seconds (its statistics are logged on stderr)."""
    launcher = "import sys; from openvino.tools.benchmark.main import main; sys.exit(main())"
    command = [sys.executable, "-c", launcher, "-m", str(xml), "-d", "CPU", "-hint", "none",
               "-api", "sync", "-nstreams", "1", "-nthreads", str(threads),
               "-t", str(int(max(1, seconds))), "-infer_precision", "f32"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = re.search(r"Median:\s+([\d.]+) (ms|us)", done.stdout + done.stderr)
    if done.returncode or not found:
        raise RuntimeError(f"benchmark_app failed: {(done.stderr or done.stdout)[-600:]}")
    return float(found.group(1)) * (1e-3 if found.group(2) == "ms" else 1e-6)


def litert_benchmark(tflite: Path, threads: int, runs: int) -> float:
    """litert-benchmark's median latency in seconds, from its result JSON."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        command = [sys.executable, "-c", "import sys; from ai_edge_litert.tools."
                   "benchmark_litert_model import main; sys.exit(main())", "--model",
                   str(tflite), "--num_runs", str(runs), "--warmup_runs", "20",
                   "--num_threads", str(threads), "--result_json", str(out)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode or not out.is_file():
            raise RuntimeError(f"litert-benchmark failed: {(done.stderr or done.stdout)[-600:]}")
        return json.loads(out.read_text())["latency"]["median_ms"] * 1e-3


def ours(artifact: Path, threads: int, runs: int, seconds: float) -> dict[str, float]:
    from edgepipe.profiling.profile import profile
    from edgepipe.profiling.runner import LatencySettings

    settings = LatencySettings(runs=runs, duration_s=seconds, warmup_runs=20, threads=threads,
                               per_layer=False)
    doc = profile(artifact, "host", settings).to_dict()
    found = {"wall": doc["latency"]["steady"]["p50_s"]}
    if "runtime_reported" in doc["latency"]:
        found["runtime_clock"] = doc["latency"]["runtime_reported"]["p50_s"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--json-out", type=Path, default=RESULTS / "profile_fidelity.json")
    args = parser.parse_args()

    from edgepipe.export.api import export_model
    from edgepipe.model import load_model
    from edgepipe.tensors import parse_shape

    started = time.time()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for spec, shape in MODELS:
            loaded = load_model(spec, input_shape=parse_shape(shape) if shape else None)
            out = Path(folder) / spec.split(":")[1]
            export_model(loaded, out, formats=("openvino", "tflite"))
            stem = out / spec.split(":")[1]
            for fmt, path, tool in (("openvino", stem.with_suffix(".xml"), "benchmark_app"),
                                    ("tflite", stem.with_suffix(".tflite"), "litert-benchmark")):
                rounds: dict[str, list[float]] = {"reference": [], "wall": [], "runtime_clock": []}
                for _ in range(args.rounds):
                    for key, value in ours(path, args.threads, 100, args.seconds).items():
                        rounds[key].append(value)
                    if tool == "benchmark_app":
                        rounds["reference"].append(benchmark_app(path, args.threads, args.seconds))
                    else:
                        # as many runs as edgepipe made in its window, at least 100
                        runs = max(100, int(args.seconds / rounds["wall"][-1]))
                        rounds["reference"].append(litert_benchmark(path, args.threads, runs))
                row = {"model": spec, "format": fmt, "tool": tool, "rounds": rounds,
                       **{k: statistics.median(v) for k, v in rounds.items() if v}}
                # Each round pairs the two measurements taken back to back; the machine's
                # drift between rounds cancels in the ratio, not in the medians.
                ref = rounds["reference"]
                row["wall_diff"] = paired(rounds["wall"], ref)
                row["tool_spread"] = (max(ref) - min(ref)) / statistics.median(ref)
                if rounds["runtime_clock"]:
                    row["runtime_clock_diff"] = paired(rounds["runtime_clock"], ref)
                rows.append(row)
                print(f"  {spec} {fmt}: {tool} {row['reference'] * 1e3:.3f} ms, edgepipe "
                      f"{row['wall'] * 1e3:.3f} ms", flush=True)
    print_table(rows, args.threads)
    document = {"threads": args.threads, "rounds": args.rounds, "seconds": args.seconds,
                "elapsed_s": time.time() - started, "rows": rows}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(document, indent=2))
    print(f"wrote {args.json_out}")


def paired(ours_: list[float], reference: list[float]) -> float:
    """Median over rounds of ours / reference - 1."""
    return statistics.median(o / r for o, r in zip(ours_, reference, strict=True)) - 1


def print_table(rows: list[dict[str, Any]], threads: int) -> None:
    print(f"\np50 latency, {threads} threads: medians over rounds; diff = median over rounds "
          "of the paired ratio (goal: within 5%); spread = the tool's own (max-min)/median "
          "across rounds")
    print(f"{'model':28} {'format':9} {'tool':17} {'tool p50':>10} {'spread':>7} "
          f"{'edgepipe':>10} {'diff':>7} {'rt clock':>10} {'diff':>7}")
    for r in rows:
        clock = (f"{r['runtime_clock'] * 1e3:7.3f} ms {100 * r['runtime_clock_diff']:+6.1f}%"
                 if "runtime_clock" in r else f"{'':>10} {'':>7}")
        print(f"{r['model']:28} {r['format']:9} {r['tool']:17} {r['reference'] * 1e3:7.3f} ms "
              f"{100 * r['tool_spread']:6.0f}% {r['wall'] * 1e3:7.3f} ms "
              f"{100 * r['wall_diff']:+6.1f}% {clock}")


if __name__ == "__main__":
    main()
