"""Benchmark: the bundled digits CNN binarized (binary weights and activations, first and
last layers at 8 bits), against its float model, in one run.

``compress`` runs as ``edgepipe compress builtin:digits-cnn --method binary --data
builtin:digits`` does (seed 0; training on the train split, metric on the 359-sample eval
split, both artifacts in ONNX Runtime). Rows: eval top-1 float and binary and the drop
(goal: within 3 points), the packed weights file against float32 weights (goals: the
binarized layers at least 25x smaller, the whole model at least 8x), binary operations
against float MACs, and ONNX Runtime batch-1 latency of both files (measured on this host;
x86 runtimes have no binary kernels, so no speed-up is expected). ``--quick`` trains 8
epochs instead of the default schedule, to check the script end to end (its accuracy is
not the method's).

    PYTHONPATH=src python benchmarks/bench_binarize.py [--quick] [--threads N] [--json-out F]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
QUICK_EPOCHS = 8


def row(name: str, metric: str, value: Any, goal: str = "", met: bool | None = None,
        kind: str = "measured") -> dict[str, Any]:
    """One result: what, which metric, its value, the goal and whether it is met."""
    return {"name": name, "metric": metric, "value": value, "goal": goal, "met": met,
            "kind": kind}


def run(quick: bool = False, threads: int | None = None) -> list[dict[str, Any]]:
    """Binarize the digits CNN and return the rows."""
    from edgepipe.compress import BinaryConfig, compress
    from edgepipe.data import load_data_for_model, make_splits
    from edgepipe.model import load_model

    loaded = load_model("builtin:digits-cnn")
    splits = make_splits(load_data_for_model("builtin:digits", loaded.inputs), seed=0, calib_size=256)
    config = BinaryConfig(epochs=QUICK_EPOCHS) if quick else BinaryConfig()
    name = f"digits-cnn binary W1A1 ({'quick, ' if quick else ''}{config.epochs} epochs max)"
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = compress(loaded, config, Path(folder) / "run", splits, threads=threads)
        seconds = time.perf_counter() - started
    [artifact] = result.to_dict()["artifacts"]
    metrics, tool = artifact["metrics"], artifact["tool"]
    storage, ops, latency = tool["storage"], tool["operations"], tool["latency"]
    drop = metrics["drop"]
    results = latency["results"]
    return [
        row(name, "eval top-1 float (ONNX Runtime)", round(metrics["float_value"], 4)),
        row(name, "eval top-1 binary (ONNX Runtime)", round(metrics["value"], 4)),
        row(name, "accuracy drop (points)", round(100 * drop, 2), "<= 3", 100 * drop <= 3),
        row(name, "binarized layers: float32 / packed bytes",
            storage["binary_layers_ratio"], ">= 25", storage["binary_layers_ratio"] >= 25,
            "float32 computed / packed measured"),
        row(name, "whole model: float32 / packed file bytes", storage["whole_model_ratio"],
            ">= 8", storage["whole_model_ratio"] >= 8, "float32 computed / file measured"),
        row(name, "packed file bytes", storage["packed_file_bytes"]),
        row(name, "float32 weight bytes", storage["float_bytes"], kind="computed"),
        row(name, "float ONNX file bytes", storage["float_onnx_file_bytes"]),
        row(name, "XNOR-popcount ops / float MACs",
            f"{ops['binary_ops_xnor_popcount']:,} / {ops['float_macs']:,}", kind="computed"),
        row(name, f"ORT p50 latency float, us ({latency['threads']} threads, batch 1)",
            results["float"]["p50_us"]),
        row(name, f"ORT p50 latency binary, us ({latency['threads']} threads, batch 1)",
            results["binary"]["p50_us"], "no speed-up expected on x86 (no binary kernels)"),
        row(name, "training seconds", tool["training"]["seconds"]),
        row(name, "epochs run (best)",
            f"{tool['training']['epochs_run']} ({tool['training']['best_epoch']})"),
        row(name, "compress seconds (export, training, checks)", round(seconds, 1)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_EPOCHS} epochs only")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json-out", type=Path, default=RESULTS / "bench_binarize.json")
    args = parser.parse_args()
    rows = run(args.quick, args.threads)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({"rows": rows, "quick": args.quick}, indent=2))
    print_table(rows)
    print(f"JSON: {args.json_out}")


def print_table(rows: list[dict[str, Any]]) -> None:
    """One line per figure: metric, value, goal, met, and whether measured or computed."""
    width = max(len(r["metric"]) for r in rows)
    print(f"{rows[0]['name']}")
    for item in rows:
        met = "" if item["met"] is None else ("met" if item["met"] else "NOT met")
        print(f"  {item['metric']:<{width}}  {item['value']!s:>22}  {item['goal']:<8} {met:<8}"
              f"  [{item['kind']}]")


if __name__ == "__main__":
    main()
