"""Benchmark: float vs int8 of torchvision resnet18 and mobilenet_v2 in ONNX Runtime,
OpenVINO, LiteRT and ExecuTorch (issue 4, torchvision part; ExecuTorch's XNNPACK int8
against LiteRT's int8, issue 21).

Two passes per model, each through ``edgepipe.compress.compress`` with the int8 method for
onnx, openvino, tflite and executorch (``--formats`` picks):

- accuracy: the model (``num_classes=10``, random init, seeded) is trained briefly on
  ``builtin:digits`` upsampled to 3x32x32 (early stopping on a validation slice of train;
  the state dict is cached under ``benchmarks/results/``, which git ignores), then
  compressed with calibration on the calibration split; top-1 and size are measured on the
  eval split, on each artifact in its own runtime;
- latency: a separate load at 1x3x224x224 with random weights, calibrated on random N(0,1)
  inputs (only speed is measured there, never accuracy). Each artifact is opened with
  ``edgepipe.runtime.open_artifact(threads=T)``, warmed up, then timed in a plain Python
  loop (binding overhead included) for at least ``--min-runs`` runs and ``--min-seconds``;
  the median is reported, raw times go to the JSON. The OpenVINO IRs are also timed by
  OpenVINO's own ``benchmark_app`` (1 stream, sync API, T threads) in the same run.

    PYTHONPATH=src python benchmarks/quantize_torchvision.py [--threads 2] [--json-out F]
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

import numpy as np

MODELS = ("resnet18", "mobilenet_v2")
FORMATS = ("onnx", "openvino", "tflite", "executorch")
RUNTIME = {"onnx": "ONNX Runtime", "openvino": "OpenVINO", "tflite": "LiteRT",
           "executorch": "ExecuTorch"}
EXTENSION = {"onnx": "onnx", "openvino": "xml", "tflite": "tflite", "executorch": "pte"}
CACHE = Path(__file__).resolve().parent / "results" / "tv-digits"
# (most epochs, patience, re-estimate batch-norm statistics before each validation):
# mobilenet_v2 trained this briefly scored chance (9.7%) in eval mode with the running
# batch-norm statistics it kept while training, so they are re-estimated on 512 train samples.
TRAINING = {"resnet18": (6, 2, False), "mobilenet_v2": (3, 3, True)}


def train(name: str, max_epochs: int, patience: int = 2, recalibrate_bn: bool = False,
          seed: int = 0) -> tuple[Path, dict]:
    """Train ``name`` on upsampled digits at 32x32 (cached); return the weights and record."""
    import torch
    from torch import nn

    from edgepipe.data import load_data_for_model, make_splits
    from edgepipe.model import load_model
    from edgepipe.zoo.train import accuracy_of

    weights, record_path = CACHE / f"{name}.pt", CACHE / f"{name}.json"
    if weights.is_file() and record_path.is_file():
        return weights, {**json.loads(record_path.read_text()), "cached": True}
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    loaded = load_model(f"torchvision:{name}", model_args={"num_classes": 10},
                        input_shape=(1, 3, 32, 32))
    model = loaded.module
    parts = make_splits(load_data_for_model("builtin:digits", loaded.inputs), seed=0)
    fit = make_splits(parts.train, seed=0, eval_fraction=0.15, calib_size=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max_epochs)
    rng = np.random.default_rng(seed)
    x, y = torch.from_numpy(fit.train.x), torch.from_numpy(fit.train.labels)
    best: dict[str, Any] = {"accuracy": -1.0, "epoch": 0}
    history, started = [], time.perf_counter()
    for epoch in range(1, max_epochs + 1):
        model.train()
        for batch in torch.from_numpy(np.argsort(rng.random(len(x)), kind="stable")).split(64):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
        schedule.step()
        if recalibrate_bn:
            reestimate_bn(model, x[:: max(1, len(x) // 512)][:512])
        accuracy = accuracy_of(model, fit.eval)
        history.append(round(accuracy, 4))
        print(f"  {name} epoch {epoch}: val {accuracy:.4f} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
        if accuracy > best["accuracy"]:
            best = {"accuracy": accuracy, "epoch": epoch,
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        elif epoch - best["epoch"] >= patience:
            break
    model.load_state_dict(best["state"])
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), weights)
    record = {"model": name, "input_shape": [1, 3, 32, 32], "epochs_run": len(history),
              "best_epoch": best["epoch"], "val_accuracy": round(best["accuracy"], 4),
              "val_accuracy_per_epoch": history, "max_epochs": max_epochs, "patience": patience,
              "bn_reestimated_on_train_samples": 512 if recalibrate_bn else 0,
              "seed": seed, "train_time_s": round(time.perf_counter() - started, 1),
              "torch_eval_accuracy": round(accuracy_of(model, parts.eval), 4)}
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return weights, record


def reestimate_bn(model: Any, x: Any) -> None:
    """Replace batch-norm running statistics with their plain average over ``x``."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for batch in x.split(64):
            model(batch)
    for m in norms:
        m.momentum = 0.1


def accuracy_pass(name: str, weights: Path, out: Path,
                  formats: tuple[str, ...] = FORMATS) -> dict[str, dict[str, Any]]:
    """int8 for every format on the trained model; top-1 and size per (format, precision)."""
    from edgepipe.compress import compress, make_config
    from edgepipe.data import load_data_for_model, make_splits
    from edgepipe.model import load_model

    loaded = load_model(f"torchvision:{name}", model_args={"num_classes": 10},
                        input_shape=(1, 3, 32, 32), weights=weights)
    splits = make_splits(load_data_for_model("builtin:digits", loaded.inputs), seed=0)
    result = compress(loaded, make_config("int8", formats=list(formats)), out, splits)
    rows: dict[str, dict[str, Any]] = {}
    for record in result.to_dict()["artifacts"]:
        metrics = record["metrics"]
        base = next(a for a in result.to_dict()["float_artifacts"] if a["name"] == record["tool"]["from"])
        rows[record["format"]] = {
            "top1_int8": metrics["value"], "top1_float": metrics["float_value"],
            "size_int8": record["size_bytes"], "size_float": base["size_bytes"],
            "eval_samples": len(splits.eval), "calib_samples": len(splits.calib)}
    return rows


def time_session(path: Path, threads: int, min_runs: int, min_seconds: float) -> dict[str, Any]:
    """Warm-up, then at least ``min_runs`` runs and ``min_seconds``; stats in ms."""
    from edgepipe.runtime import open_artifact

    started = time.perf_counter()
    session = open_artifact(path, threads=threads)
    load_s = time.perf_counter() - started
    x = [np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)]
    x = [np.ascontiguousarray(x[0].transpose(0, 2, 3, 1))] if session.inputs[0].shape[-1] == 3 \
        else x
    started = time.perf_counter()
    session.run(x)
    first_ms = (time.perf_counter() - started) * 1e3
    for _ in range(10):
        session.run(x)
    times: list[float] = []
    begin = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - begin < min_seconds:
        t0 = time.perf_counter()
        session.run(x)
        times.append((time.perf_counter() - t0) * 1e3)
    ordered = sorted(times)
    return {"runtime": session.name, "version": session.version, "options": session.options,
            "load_s": round(load_s, 3), "first_ms": round(first_ms, 3), "count": len(times),
            "median_ms": statistics.median(times), "mean_ms": statistics.fmean(times),
            "std_ms": statistics.pstdev(times), "min_ms": ordered[0],
            "p90_ms": ordered[int(0.9 * (len(ordered) - 1))], "max_ms": ordered[-1],
            "raw_ms": [round(t, 4) for t in times]}


def benchmark_app(xml: Path, threads: int, seconds: int) -> dict[str, Any]:
    """OpenVINO's benchmark_app on one IR: its own median and average latency (ms)."""
    # benchmark_app refuses -nstreams/-nthreads with -hint latency ("a benchmark_app UI
    # rule"); -hint none, 1 stream, sync API is the latency setup with the threads given.
    # The console script may not be on PATH (a venv not activated); run its main() with this
    # interpreter instead (the module has no __main__ guard, so `python -m` would do nothing).
    launcher = "import sys; from openvino.tools.benchmark.main import main; sys.exit(main())"
    command = [sys.executable, "-c", launcher, "-m", str(xml), "-d", "CPU", "-hint", "none", "-api", "sync",
               "-nstreams", "1", "-nthreads", str(threads), "-t", str(seconds),
               "-shape", "[1,3,224,224]"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    text = done.stdout + done.stderr  # it logs its statistics to stderr on some versions
    found = {key: re.search(rf"{key}:\s+([\d.]+) ms", text)
             for key in ("Median", "Average", "Min", "Max")}
    count = re.search(r"Count:\s+(\d+) iterations", text)
    if done.returncode or not found["Median"]:
        return {"error": (done.stderr or done.stdout)[-800:], "command": command}
    return {"command": " ".join(command), "count": int(count.group(1)) if count else None,
            **{f"{k.lower()}_ms": float(m.group(1)) for k, m in found.items() if m}}


def latency_pass(name: str, out: Path, threads: int, min_runs: int, min_seconds: float,
                 bench_seconds: int, formats: tuple[str, ...] = FORMATS
                 ) -> dict[str, dict[str, Any]]:
    """int8 at 1x3x224x224, random weights and random calibration; timings per format."""
    from edgepipe.compress import compress, make_config
    from edgepipe.model import load_model

    loaded = load_model(f"torchvision:{name}", model_args={"num_classes": 10},
                        input_shape=(1, 3, 224, 224))
    config = make_config("int8", formats=list(formats), allow_random_calibration=True,
                         calib_size=32)
    result = compress(loaded, config, out)
    rows: dict[str, dict[str, Any]] = {}
    for record in result.to_dict()["artifacts"]:
        base = next(a for a in result.to_dict()["float_artifacts"] if a["name"] == record["tool"]["from"])
        row = {"size_int8_224": record["size_bytes"], "size_float_224": base["size_bytes"],
               "int8": time_session(out / record["name"], threads, min_runs, min_seconds),
               "float": time_session(out / base["name"], threads, min_runs, min_seconds)}
        if record["format"] == "openvino":
            row["benchmark_app"] = {
                "int8": benchmark_app(out / record["name"], threads, bench_seconds),
                "float": benchmark_app(out / base["name"], threads, bench_seconds)}
        rows[record["format"]] = row
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-runs", type=int, default=50)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--bench-seconds", type=int, default=10, help="benchmark_app -t")
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    report = run(args.models, args.threads, args.min_runs, args.min_seconds, args.bench_seconds,
                 tuple(args.formats))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)


def run(models: list[str], threads: int, min_runs: int, min_seconds: float,
        bench_seconds: int, formats: tuple[str, ...] = FORMATS) -> dict[str, Any]:
    """Train (cached), then the accuracy and latency passes of each model."""
    from edgepipe.system import host_identity

    started = time.perf_counter()
    report: dict[str, Any] = {"host": host_identity().to_dict(), "threads": threads, "min_runs": min_runs,
                              "min_seconds": min_seconds, "models": {}}
    with tempfile.TemporaryDirectory(prefix="edgepipe-tvbench-") as tmp:
        for name in models:
            weights, training = train(name, *TRAINING[name])
            print(f"{name}: trained {training['epochs_run']} epoch(s), best {training['best_epoch']}"
                  f", val {training['val_accuracy']:.4f}, torch eval "
                  f"{training['torch_eval_accuracy']:.4f}"
                  + (" (cached)" if training.get("cached") else
                     f", {training['train_time_s']} s"), flush=True)
            accuracy = accuracy_pass(name, weights, Path(tmp) / f"{name}-acc", formats)
            latency = latency_pass(name, Path(tmp) / f"{name}-lat", threads, min_runs,
                                   min_seconds, bench_seconds, formats)
            report["models"][name] = {"training": training, "formats": {
                fmt: {**accuracy[fmt], **latency[fmt]} for fmt in formats}}
    report["wall_s"] = round(time.perf_counter() - started, 1)
    return report


def print_table(report: dict[str, Any]) -> None:
    host = report["host"]
    print(f"\nmeasured on {host.get('cpu')} ({report['threads']} threads); top-1 and size: trained "
          "at 1x3x32x32 on builtin:digits, eval split; latency: random weights at 1x3x224x224, "
          "int8 calibrated on RANDOM inputs (speed only), batch 1, median of a Python loop "
          f"(>= {report['min_runs']} runs and {report['min_seconds']:g} s after warm-up, binding "
          "overhead included); benchmark_app: OpenVINO's own median")
    print(f"{'model':13} {'runtime/format':22} {'prec':5} {'top-1':>7} {'size 32px':>10} "
          f"{'size 224':>10} {'median ms':>9} {'speed-up':>8} {'bench_app ms':>12}")
    for name, entry in report["models"].items():
        best = None
        for fmt, row in entry["formats"].items():
            for prec in ("float", "int8"):
                ms = row[prec]["median_ms"]
                speedup = row["float"]["median_ms"] / ms
                bench = row.get("benchmark_app", {}).get(prec, {}).get("median_ms")
                label = f"{RUNTIME[fmt]} (.{EXTENSION[fmt]})"
                print(f"{name:13} {label:22} {'fp32' if prec == 'float' else 'int8':5} "
                      f"{100 * row[f'top1_{prec}']:6.2f}% {row[f'size_{prec}']:10d} "
                      f"{row[f'size_{prec}_224']:10d} {ms:9.2f} {speedup:7.2f}x "
                      f"{'' if bench is None else f'{bench:.2f}':>12}")
                if best is None or ms < best[0]:
                    best = (ms, label, prec)
        slowest = max(r[p]["median_ms"] for r in entry["formats"].values()
                      for p in ("float", "int8"))
        assert best is not None
        print(f"{'':13} fastest: {best[1]} {best[2]} at {best[0]:.2f} ms "
              f"({slowest / best[0]:.1f}x faster than the slowest row)")
    print(f"run time {report['wall_s']} s")


if __name__ == "__main__":
    main()
