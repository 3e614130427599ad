"""Benchmark: torchvision resnet18 (random weights) to ONNX, TFLite and OpenVINO, with parity.

Each measured run is a fresh Python process (so imports, peak RSS and caches are its own):
one run exports all three formats as ``edgepipe export`` does, then one run per format.
Wall time is the process's; export and check seconds come from the manifest; peak RSS is
the process's ``ru_maxrss``. Prints a table and writes JSON (``--json-out``).

    PYTHONPATH=src python benchmarks/export.py [--arch resnet18] [--json-out FILE] [--quick]

Goal: all three formats with parity in under 2 minutes and 4 GB on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FORMATS = ("onnx", "tflite", "openvino")


def child(arch: str, formats: list[str], out: str) -> None:
    """Run inside the measured process: export, then report peak RSS as JSON on stdout."""
    import torch

    from edgepipe.export import export_model
    from edgepipe.model import load_model

    torch.manual_seed(0)  # torchvision's random initialisation: the same weights every run
    started = time.perf_counter()
    loaded = load_model(f"torchvision:{arch}", input_shape=(1, 3, 224, 224))
    load_seconds = time.perf_counter() - started
    result = export_model(loaded, out, formats=tuple(formats))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"load_seconds": load_seconds, "peak_rss_bytes": peak_kib * 1024,
                      "artifacts": result.artifacts}))


def measure(arch: str, formats: list[str]) -> dict:
    """One fresh process exporting ``formats``; its wall time, peak RSS and artifacts."""
    with tempfile.TemporaryDirectory(prefix="edgepipe-bench-") as out:
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--child", "--arch", arch, "--out", out,
             *[arg for f in formats for arg in ("--format", f)]],
            capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"export of {formats} failed:\n{proc.stderr[-3000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = []
    for artifact in report["artifacts"]:
        outputs = artifact["parity"]["outputs"]
        rows.append({
            "format": artifact["format"], "name": artifact["name"],
            "size_bytes": artifact["size_bytes"],
            "export_seconds": artifact["metrics"]["export_seconds"],
            "check_seconds": artifact["metrics"]["check_seconds"],
            "max_abs_diff": max(o["max_abs_diff"] for o in outputs),
            "sqnr_db": min((o["sqnr_db"] for o in outputs if o["sqnr_db"] is not None),
                           default=None),
            "top1_agreement": outputs[0]["top1_agreement"],
            "exporter": f"{artifact['tool']['exporter']} {artifact['tool']['version']}",
        })
    return {"formats": formats, "wall_seconds": round(wall, 2),
            "load_seconds": round(report["load_seconds"], 2),
            "peak_rss_bytes": report["peak_rss_bytes"], "artifacts": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--json-out", default="benchmarks/results/export.json")
    parser.add_argument("--quick", action="store_true", help="only the all-formats run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--format", action="append", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.arch, args.format, args.out)
        return

    runs = [measure(args.arch, list(FORMATS))]
    if not args.quick:
        runs += [measure(args.arch, [fmt]) for fmt in FORMATS]
    document = {
        "benchmark": "export", "arch": args.arch, "input_shape": [1, 3, 224, 224],
        "host": {"machine": platform.machine(), "python": platform.python_version(),
                 "cpus": len(os.sched_getaffinity(0)), "processor": _cpu_name()},
        "goal": {"wall_seconds": 120, "peak_rss_bytes": 4 * 2**30},
        "runs": runs,
    }
    _print(document)
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {args.json_out}")


def _print(document: dict) -> None:
    print(f"{document['arch']} 1x3x224x224 on {document['host']['processor']} "
          f"({document['host']['cpus']} CPUs)\n")
    header = (f"{'run':<24}{'wall s':>8}{'peak RSS':>10}  {'format':<9}{'export s':>9}"
              f"{'check s':>8}{'size MiB':>9}{'max|diff|':>11}{'SQNR dB':>9}{'top-1':>7}")
    print(header)
    print("-" * len(header))
    for run in document["runs"]:
        label = "+".join(run["formats"])
        for i, row in enumerate(run["artifacts"]):
            first = i == 0
            rss = f"{run['peak_rss_bytes'] / 2**30:.2f} GiB" if first else ""
            sqnr = "inf" if row["sqnr_db"] is None else f"{row['sqnr_db']:.1f}"
            print(f"{label if first else '':<24}"
                  f"{(str(run['wall_seconds']) if first else ''):>8}"
                  f"{rss:>10}  "
                  f"{row['format']:<9}{row['export_seconds']:>9.2f}{row['check_seconds']:>8.2f}"
                  f"{row['size_bytes'] / 2**20:>9.1f}{row['max_abs_diff']:>11.2e}{sqnr:>9}"
                  f"{row['top1_agreement']:>7.0%}")
    total = document["runs"][0]
    verdict = ("met" if total["wall_seconds"] <= 120 and total["peak_rss_bytes"] <= 4 * 2**30
               else "NOT met")
    print(f"\nall formats in one process: {total['wall_seconds']} s, peak RSS "
          f"{total['peak_rss_bytes'] / 2**30:.2f} GiB (goal 120 s, 4 GiB: {verdict})")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
