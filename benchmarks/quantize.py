"""Benchmark of issue 4 in one run: every quantization method on the bundled digits models,
then float vs int8 of torchvision resnet18 and mobilenet_v2 in ONNX Runtime, OpenVINO and
LiteRT (top-1 after brief training on digits, size, latency at 224x224 with OpenVINO's
``benchmark_app`` beside our own loop).

The two parts live in ``quantize_digits.py`` and ``quantize_torchvision.py`` (each also runs
alone); this script runs them back to back in one process, prints both tables and writes
one JSON. ``int8_other_host.py`` times the same kind of artifacts on another CPU (VNNI).

    PYTHONPATH=src python benchmarks/quantize.py [--threads 2] [--json-out F]
        [--parts digits torchvision] [--models resnet18 mobilenet_v2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import quantize_digits
import quantize_torchvision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=("digits", "torchvision"),
                        default=["digits", "torchvision"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=1000, help="digits: timed runs")
    parser.add_argument("--models", nargs="+", choices=quantize_torchvision.MODELS,
                        default=list(quantize_torchvision.MODELS))
    parser.add_argument("--min-runs", type=int, default=50)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--bench-seconds", type=int, default=10, help="benchmark_app -t")
    parser.add_argument("--json-out", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "quantize.json")
    args = parser.parse_args()
    started = time.perf_counter()
    report = {}
    if "digits" in args.parts:
        report["digits"] = quantize_digits.run(args.threads, args.iters)
        quantize_digits.print_table(report["digits"])
    if "torchvision" in args.parts:
        report["torchvision"] = quantize_torchvision.run(
            args.models, args.threads, args.min_runs, args.min_seconds, args.bench_seconds)
        quantize_torchvision.print_table(report["torchvision"])
    report["wall_s"] = round(time.perf_counter() - started, 1)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"JSON: {args.json_out} ({report['wall_s']} s)")


if __name__ == "__main__":
    main()
