"""Benchmark of issue 5: binarization and low-rank factorization on the bundled digits
models and torchvision resnet18, measured side by side in one run.

Binary (``bench_binarize.py``): the digits CNN with binary weights and activations, trained
by distillation; eval top-1, packed size against float, operations, ONNX Runtime latency.

Low-rank, digits CNN and MLP at ``--ratio 0.5``: parameters and MACs before and after,
eval top-1 of the factorized artifact without and with distillation fine-tuning (goal:
within 1 point of float), and ONNX Runtime latency of the float and factorized artifacts
timed alternately in the same process. Each is run with the latency check off (every
layer the ratio picks is factorized) and on (the default: a layer not faster factorized
stays whole). resnet18 with random weights at 1x3x224x224 (calibrated on random inputs,
speed only): MACs and latency ratio, and the layers the latency check kept whole.

    PYTHONPATH=src python benchmarks/binarize_lowrank.py [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.compress.lowrank.latency import time_artifacts

RESULTS = Path(__file__).resolve().parent / "results"


def lowrank_digits(name: str, threads: int, quick: bool, tmp: Path) -> list[dict[str, Any]]:
    from edgepipe.compress import compress, make_config
    from edgepipe.data import load_data_for_model, make_splits
    from edgepipe.model import load_model

    loaded = load_model(f"builtin:{name}")
    splits = make_splits(load_data_for_model("builtin:digits", loaded.inputs), seed=0)
    rows = []
    for check in (False, True):
        for epochs in ((0, 10) if not quick else (0, 2)):
            out = tmp / f"{name}-{check}-{epochs}"
            result = compress(loaded, make_config("lowrank", ratio=0.5, latency_check=check,
                                                  epochs=epochs), out, splits,
                              threads=threads)
            [artifact] = result.to_dict()["artifacts"]
            [base] = result.to_dict()["float_artifacts"]
            tool = artifact["tool"]
            float_ms, lowrank_ms = time_artifacts(
                [out / base["name"], out / artifact["name"]], [splits.eval.x[:1]], threads,
                rounds=3 if quick else 10, seconds=0.1 if quick else 0.3)
            rows.append({
                "model": name, "latency_check": check, "finetune_epochs": epochs,
                "epochs_run": (tool.get("finetune") or {}).get("epochs_run", 0),
                "params_before": tool["params"]["before"], "params_after": tool["params"]["after"],
                "macs_before": tool["macs"]["before"], "macs_after": tool["macs"]["after"],
                "float_top1": artifact["metrics"]["float_value"],
                "top1": artifact["metrics"]["value"],
                "drop_points": 100 * artifact["metrics"]["drop"],
                "float_ms": float_ms, "lowrank_ms": lowrank_ms,
                "factorized": [lay["layer"] for lay in tool["layers"]
                               if lay["decision"] == "factorized"],
                "kept_whole_by_latency": [lay["layer"] for lay in tool["layers"]
                                          if lay.get("latency") and lay["decision"] != "factorized"],
                "goal_within_1pt": 100 * artifact["metrics"]["drop"] <= 1.0})
    return rows


def lowrank_resnet18(threads: int, quick: bool, tmp: Path) -> dict[str, Any]:
    from edgepipe.compress import compress, make_config
    from edgepipe.data import Dataset, make_splits
    from edgepipe.model import load_model

    size = 112 if quick else 224
    loaded = load_model("torchvision:resnet18", input_shape=(1, 3, size, size))
    x = np.random.default_rng(0).standard_normal((80, 3, size, size)).astype(np.float32)
    splits = make_splits(Dataset({loaded.inputs[0].name: x}, source="random N(0,1)"), seed=0,
                   calib_size=32)
    out = tmp / "resnet18"
    started = time.perf_counter()
    result = compress(loaded, make_config("lowrank", ratio=0.5, calib_size=32), out, splits,
                      threads=threads)
    seconds = time.perf_counter() - started
    [artifact] = result.to_dict()["artifacts"]
    [base] = result.to_dict()["float_artifacts"]
    tool = artifact["tool"]
    float_ms, lowrank_ms = time_artifacts([out / base["name"], out / artifact["name"]],
                                          [x[:1]], threads, rounds=3 if quick else 5,
                                          seconds=0.3 if quick else 1.0)
    layers = tool["layers"]
    return {
        "model": "resnet18 (random weights)", "input": [1, 3, size, size],
        "params_before": tool["params"]["before"], "params_after": tool["params"]["after"],
        "macs_before": tool["macs"]["before"], "macs_after": tool["macs"]["after"],
        "float_ms": float_ms, "lowrank_ms": lowrank_ms, "compress_seconds": round(seconds, 1),
        "factorized": [lay["layer"] for lay in layers if lay["decision"] == "factorized"],
        "kept_whole_by_latency": [
            {"layer": lay["layer"], "original_ms": lay["latency"]["original_ms"],
             "factorized_ms": lay["latency"]["factorized_ms"]}
            for lay in layers if lay.get("latency") and lay["decision"] != "factorized"],
        "kept_whole_other": [{"layer": lay["layer"], "reason": lay["reason"]} for lay in layers
                             if not lay.get("latency") and lay["decision"] != "factorized"]}


def print_lowrank(report: dict[str, Any]) -> None:
    print(f"\nlow-rank --ratio 0.5 (params), {report['threads']} thread(s); top-1 on the eval "
          "split (359 samples); latency: ONNX Runtime, batch 1, medians of alternating rounds")
    print(f"{'model':11} {'lat.check':9} {'ft ep':>5} {'params':>15} {'MACs':>19} "
          f"{'top-1':>7} {'float':>7} {'drop':>6} {'float ms':>8} {'lr ms':>7} {'factorized'}")
    for r in report["digits"]:
        print(f"{r['model']:11} {'on' if r['latency_check'] else 'off':9} "
              f"{r['epochs_run']:>2}/{r['finetune_epochs']:<2} "
              f"{r['params_before']:>7}->{r['params_after']:<7} "
              f"{r['macs_before']:>9}->{r['macs_after']:<9} {100 * r['top1']:6.2f}% "
              f"{100 * r['float_top1']:6.2f}% {r['drop_points']:6.2f} {r['float_ms']:8.4f} "
              f"{r['lowrank_ms']:7.4f} {','.join(r['factorized']) or '-'}")
    r = report.get("resnet18")
    if r:
        print(f"\n{r['model']} at {'x'.join(map(str, r['input']))}: MACs {r['macs_before']} -> "
              f"{r['macs_after']} ({r['macs_after'] / r['macs_before']:.3f}), params "
              f"{r['params_before']} -> {r['params_after']}; ONNX Runtime {r['float_ms']:.2f} ms "
              f"-> {r['lowrank_ms']:.2f} ms ({r['float_ms'] / r['lowrank_ms']:.2f}x); "
              f"{len(r['factorized'])} layer(s) factorized, "
              f"{len(r['kept_whole_by_latency'])} kept whole by the latency check:")
        for k in r["kept_whole_by_latency"]:
            print(f"  {k['layer']}: whole {k['original_ms']:.4f} ms vs factorized "
                  f"{k['factorized_ms']:.4f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="fewer epochs, runs, 112x112")
    parser.add_argument("--skip-resnet", action="store_true")
    parser.add_argument("--skip-binary", action="store_true")
    parser.add_argument("--json-out", type=Path, default=RESULTS / "binarize_lowrank.json")
    args = parser.parse_args()
    from edgepipe.system import host_identity

    started = time.perf_counter()
    report: dict[str, Any] = {"host": host_identity().to_dict(), "threads": args.threads,
                              "quick": args.quick}
    if not args.skip_binary:
        import bench_binarize

        report["binary"] = bench_binarize.run(args.quick, args.threads)
    with tempfile.TemporaryDirectory(prefix="edgepipe-lowrank-") as tmp:
        report["digits"] = [row for name in ("digits-cnn", "digits-mlp")
                            for row in lowrank_digits(name, args.threads, args.quick, Path(tmp))]
        if not args.skip_resnet:
            report["resnet18"] = lowrank_resnet18(args.threads, args.quick, Path(tmp))
    report["wall_s"] = round(time.perf_counter() - started, 1)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    if "binary" in report:
        import bench_binarize

        bench_binarize.print_table(report["binary"])
    print_lowrank(report)
    print(f"JSON: {args.json_out} ({report['wall_s']} s)")


if __name__ == "__main__":
    main()
