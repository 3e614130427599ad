"""Benchmark: how well the roofline estimator predicts measured latency on this machine.

For each model of ``MODELS`` (bundled digits models and torchvision architectures at
several input sizes, random weights: only speed matters), the ONNX export is profiled with
``edgepipe.profiling.profile.profile`` on ``host`` (ONNX Runtime, fp32, T threads: the p50 of
the agent's steady state), and its graph summarised by ``inspect``. The estimator's three
constants (compute efficiency, bandwidth efficiency, per-op overhead) are fitted by a grid
search minimising the mean |log(estimate / measured)|; the error printed for each model is
**leave-one-out**: the constants are fitted on the other models and then predict this one,
so the error is that of a model the fit never saw. With ``--write-calibration`` the
constants fitted on all models, and the leave-one-out error, go to
``src/edgepipe/devices/catalog/_estimator.yaml`` (which every estimate quotes).

    PYTHONPATH=src python benchmarks/estimator.py [--threads 2] [--write-calibration]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
# (spec, input shape): different depths, widths, resolutions, op mixes and MAC counts.
MODELS = [
    ("builtin:digits-mlp", None), ("builtin:digits-cnn", None),
    ("torchvision:resnet18", "1x3x224x224"), ("torchvision:resnet18", "1x3x112x112"),
    ("torchvision:resnet50", "1x3x224x224"),
    ("torchvision:mobilenet_v2", "1x3x224x224"), ("torchvision:mobilenet_v2", "1x3x96x96"),
    ("torchvision:mobilenet_v3_small", "1x3x224x224"),
    ("torchvision:squeezenet1_1", "1x3x224x224"),
    ("torchvision:shufflenet_v2_x1_0", "1x3x224x224"),
    ("torchvision:efficientnet_b0", "1x3x224x224"),
    ("torchvision:mnasnet0_5", "1x3x224x224"),
    ("torchvision:regnet_x_400mf", "1x3x224x224"),
    ("torchvision:alexnet", "1x3x224x224"),
]
FIELDS = ("compute_efficiency", "weight_bandwidth", "activation_bandwidth", "overhead_op_s",
          "overhead_call_s")
STARTS = [(0.5, 1.0, 4.0, 2e-6, 1e-5), (0.9, 0.5, 20.0, 5e-6, 2e-6), (0.2, 2.0, 1.0, 1e-6, 5e-5)]


def measure(threads: int, seconds: float) -> list[dict[str, Any]]:
    """Export each model to ONNX, profile it on host, keep its graph summary."""
    from edgepipe.analysis.inspect import inspect_model
    from edgepipe.devices.estimator import layer_arrays
    from edgepipe.export.api import export_model
    from edgepipe.model import load_model
    from edgepipe.profiling.profile import profile
    from edgepipe.profiling.runner import LatencySettings
    from edgepipe.tensors import parse_shape

    settings = LatencySettings(runs=20, duration_s=seconds, threads=threads, per_layer=False)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for spec, shape in MODELS:
            loaded = load_model(spec, input_shape=parse_shape(shape) if shape else None)
            out = Path(folder) / f"{spec.split(':')[1]}-{shape or 'native'}"
            result = export_model(loaded, out, formats=("onnx",))
            onnx_path = out / result.artifacts[0]["path"]
            summary = inspect_model(load_model(str(onnx_path), check=False))
            doc = profile(onnx_path, "host", settings).to_dict()
            arrays = [a.tolist() for a in layer_arrays(summary, "fp32")]
            rows.append({"model": spec, "input": shape or "native", "arrays": arrays,
                         "macs": summary.total_macs, "layers": len(summary.layers),
                         "params": summary.total_params,
                         "measured_s": doc["latency"]["steady"]["p50_s"]})
            print(f"  {spec} {shape or ''}: {rows[-1]['measured_s'] * 1e3:.3f} ms", flush=True)
    return rows


def predict(arrays: tuple[np.ndarray, ...], peak: float, bandwidth: float,
            constants: tuple[float, ...]) -> float:
    """The estimator's own formula with these constants."""
    from edgepipe.devices.estimator import Constants, roofline_seconds

    return roofline_seconds(arrays, peak, bandwidth, Constants(*constants))


def fit(matrices: list, measured: np.ndarray, peak: float, bandwidth: float) -> tuple:
    """Constants minimising mean |log(estimate / measured)| (Nelder-Mead on their logs,
    from a few starting points; every constant stays positive)."""
    from scipy.optimize import minimize

    def loss(logs: np.ndarray) -> float:
        constants = tuple(np.exp(logs))
        estimates = np.array([predict(m, peak, bandwidth, constants) for m in matrices])
        return float(np.mean(np.abs(np.log(estimates / measured))))

    best = min((minimize(loss, np.log(start), method="Nelder-Mead",
                         options={"maxiter": 3000, "xatol": 1e-4, "fatol": 1e-6})
                for start in STARTS), key=lambda r: r.fun)
    return tuple(float(v) for v in np.exp(best.x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--write-calibration", action="store_true")
    parser.add_argument("--reuse", type=Path, help="refit on the measurements of an earlier "
                        "run's JSON instead of measuring again")
    parser.add_argument("--json-out", type=Path, default=RESULTS / "estimator.json")
    args = parser.parse_args()

    from edgepipe.devices.catalog import get_target
    from edgepipe.devices.estimator import CALIBRATION

    host = get_target("host")
    peak = host.peak_gmacs["fp32"].value * 1e9
    bandwidth = host.memory.bandwidth_gbps.value * 1e9
    print(f"host: {host.title}; peak fp32 {peak / 1e9:.1f} GMAC/s "
          f"({host.peak_gmacs['fp32'].describe()}); copy bandwidth {bandwidth / 1e9:.1f} GB/s")
    started = time.time()
    if args.reuse:
        rows = json.loads(args.reuse.read_text())["rows"]
    else:
        rows = measure(args.threads, args.seconds)
    matrices = [tuple(np.array(a) for a in r["arrays"]) for r in rows]
    measured = np.array([r["measured_s"] for r in rows])
    for i, row in enumerate(rows):  # leave-one-out
        others = [j for j in range(len(rows)) if j != i]
        constants = fit([matrices[j] for j in others], measured[others], peak, bandwidth)
        row["loo_constants"] = constants
        row["estimated_s"] = predict(matrices[i], peak, bandwidth, constants)
        row["error"] = row["estimated_s"] / row["measured_s"] - 1
    final = fit(matrices, measured, peak, bandwidth)
    errors = np.abs([r["error"] for r in rows])
    summary = (f"leave-one-out over {len(rows)} models (ONNX Runtime fp32, {args.threads} "
               f"threads): median |error| {100 * np.median(errors):.0f}%, max "
               f"{100 * errors.max():.0f}%")
    print(f"\n{'model':32} {'input':>12} {'GMACs':>7} {'layers':>6} {'measured':>11} "
          f"{'estimated':>11} {'error':>7}")
    for row in rows:
        print(f"{row['model']:32} {row['input']:>12} {row['macs'] / 1e9:7.3f} "
              f"{row['layers']:6d} {row['measured_s'] * 1e3:8.3f} ms "
              f"{row['estimated_s'] * 1e3:8.3f} ms {100 * row['error']:+6.0f}%")
    print(f"\n{summary}\nconstants fitted on all models: "
          + ", ".join(f"{k} {v:.3g}" for k, v in zip(FIELDS, final, strict=True)))
    document = {
        "host": host.title, "cpu": platform.processor() or platform.machine(),
        "threads": args.threads, "peak_gmacs_fp32": peak / 1e9,
        "bandwidth_gbps": bandwidth / 1e9, "seconds": time.time() - started,
        "constants": dict(zip(FIELDS, final, strict=True)),
        "error": {"summary": summary, "median_abs": float(np.median(errors)),
                  "max_abs": float(errors.max()), "models": len(rows)},
        "rows": rows,
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(document, indent=2))
    print(f"wrote {args.json_out}")
    if args.write_calibration:
        write_calibration(CALIBRATION, document)
        print(f"wrote {CALIBRATION}")


def write_calibration(path: Path, document: dict[str, Any]) -> None:
    import yaml

    calibration = {
        "how": (f"benchmarks/estimator.py on {document['host']} ({document['threads']} "
                f"threads, ONNX Runtime fp32, {document['error']['models']} models): constants "
                "fitted by Nelder-Mead on mean |log(estimate/measured)|"),
        "constants": document["constants"],
        "error": document["error"],
        "measured": time.strftime("%Y-%m-%d"),
    }
    header = ("# Written by benchmarks/estimator.py --write-calibration; not a device (the "
              "leading _ keeps\n# it out of the catalog). Constants of the roofline in "
              "edgepipe/devices/estimator.py.\n")
    path.write_text(header + yaml.safe_dump(calibration, sort_keys=False))


if __name__ == "__main__":
    main()
