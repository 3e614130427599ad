"""Benchmark: every compression method and format on the bundled digits models.

For each model and method, ``compress`` runs as ``edgepipe compress`` does (calibration on
the 256-sample calibration split, metric on the 359-sample eval split, seed 0), plus
onnxruntime's ``quantize_static`` with its own defaults on the same float model and the
same calibration samples, for comparison. Latency is a plain Python loop around
``Session.run`` at batch 1 (warm-up, then the median of ``--iters`` runs), so it includes
the binding's call overhead; it is measured on this host only, with the threads given.
Prints a table and writes JSON (``--json-out``).

    PYTHONPATH=src python benchmarks/quantize_digits.py [--threads 1] [--iters 2000] [--json-out F]

``benchmarks/quantize.py`` runs this and the torchvision part in one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ALL = ("onnx", "openvino", "tflite")
RUNS = [("digits-cnn", "int8", ALL), ("digits-cnn", "int8-dynamic", ("onnx",)),
        ("digits-cnn", "fp16", ALL),
        ("digits-mlp", "int8", ALL), ("digits-mlp", "int8-dynamic", ("onnx",)),
        ("digits-mlp", "fp16", ALL)]


def latency_us(path: Path, sample: Any, threads: int, iters: int) -> float:
    """Median microseconds of one batch-1 run (after 200 warm-up runs)."""
    from edgepipe.evaluate import _fit_inputs
    from edgepipe.runtime import open_artifact

    session = open_artifact(path, threads=threads)
    arrays, _ = _fit_inputs(session, [sample])
    for _ in range(200):
        session.run(arrays)
    times = []
    for _ in range(iters):
        started = time.perf_counter()
        session.run(arrays)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def ort_default(out: Path, name: str, splits: Any, loaded: Any) -> dict[str, Any]:
    """onnxruntime's quantize_static with its defaults, same float model and calibration."""
    from onnxruntime.quantization import quantize_static

    from edgepipe.evaluate import evaluate_artifact

    class Reader:
        def __init__(self) -> None:
            self.samples = iter(splits.calib.x)

        def get_next(self) -> dict[str, Any] | None:
            x = next(self.samples, None)
            return None if x is None else {"input": x[None]}

    target = out / f"{name}.ort-default.onnx"
    quantize_static(str(out / f"{name}.onnx"), str(target), Reader())
    result = evaluate_artifact(target, splits.eval, reference=loaded)
    return {"path": target, "value": result.value, "sqnr_db": result.outputs[0].sqnr_db}


def run(threads: int, iters: int) -> dict[str, Any]:
    """Every (model, method) of RUNS plus quantize_static's defaults; rows of measurements."""
    from edgepipe.compress import compress, make_config
    from edgepipe.data import load_data_for_model, make_splits
    from edgepipe.model import load_model
    from edgepipe.system import host_identity

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edgepipe-bench-") as tmp:
        for name, method, formats in RUNS:
            loaded = load_model(f"builtin:{name}")
            splits = make_splits(load_data_for_model("builtin:digits", loaded.inputs), seed=0)
            out = Path(tmp) / f"{name}-{method}"
            result = compress(loaded, make_config(method, formats=formats), out, splits)
            sample = splits.eval.x[:1]
            floats = {a["name"]: a for a in result.to_dict()["float_artifacts"]}
            for artifact in result.to_dict()["artifacts"]:
                metrics = artifact["metrics"]
                base = floats[artifact["tool"]["from"]]
                rows.append({
                    "model": name, "method": method, "artifact": artifact["name"],
                    "top1": metrics["value"], "float_top1": metrics["float_value"],
                    "drop_points": 100 * metrics["drop"],
                    "sqnr_db": metrics["eval"]["outputs"][0]["sqnr_db"],
                    "size_bytes": artifact["size_bytes"], "float_size_bytes": base["size_bytes"],
                    "latency_us": latency_us(out / artifact["name"], sample, threads, iters),
                    "float_latency_us": latency_us(out / base["name"], sample, threads,
                                                   iters)})
            if method == "int8":
                ours = next(r for r in rows if r["model"] == name and r["method"] == method
                            and r["artifact"].endswith(".onnx"))
                default = ort_default(out, name, splits, loaded)
                rows.append({"model": name, "method": "ort quantize_static defaults",
                             "artifact": default["path"].name, "top1": default["value"],
                             "float_top1": ours["float_top1"],
                             "drop_points": 100 * (ours["float_top1"] - default["value"]),
                             "sqnr_db": default["sqnr_db"],
                             "size_bytes": default["path"].stat().st_size,
                             "float_size_bytes": ours["float_size_bytes"],
                             "latency_us": latency_us(default["path"], sample, threads, iters),
                             "float_latency_us": ours["float_latency_us"]})
    return {"host": host_identity().to_dict(), "threads": threads, "iters": iters, "rows": rows}


def print_table(report: dict[str, Any]) -> None:
    header = (f"{'artifact':34} {'top-1':>7} {'float':>7} {'drop':>6} {'SQNR':>7} "
              f"{'size':>8} {'float':>8} {'lat us':>7} {'float us':>8}")
    print(f"measured on {report['host']['cpu']}, {report['threads']} thread(s), batch 1, "
          f"median of {report['iters']} runs (Python loop, binding overhead included)")
    print(header)
    for r in report["rows"]:
        sqnr = "inf" if r["sqnr_db"] is None else f"{r['sqnr_db']:.1f}"
        print(f"{r['artifact']:34} {100 * r['top1']:6.2f}% {100 * r['float_top1']:6.2f}% "
              f"{r['drop_points']:6.2f} {sqnr:>7} {r['size_bytes']:8d} "
              f"{r['float_size_bytes']:8d} {r['latency_us']:7.1f} {r['float_latency_us']:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    report = run(args.threads, args.iters)
    print_table(report)
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
