"""Benchmark: latency and energy per inference on an NVIDIA GPU, measured with NVML.

For the bundled digits CNN (3x32x32; its trained weights where safetensors is installed)
and torchvision resnet18 (3x224x224, random weights: only speed and energy matter), at
batch 1 and 32, in fp32 and fp16: a ``.pt2`` program is exported, and edgepipe's profiling
agent runs it with torch on CUDA (``torch.cuda.synchronize`` after each call), then measures
energy with NVML's total-energy counter: idle power over a window first, then a window of
steady inference, (busy energy - idle power x time) / inferences.

Needs only torch (CUDA), torchvision, numpy and nvidia-ml-py, so it runs on a GPU machine
without the rest of edgepipe's dependencies. Without a GPU it says so and exits 0.

    PYTHONPATH=src python benchmarks/cuda_energy.py [--json-out F]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
AGENT = Path(__file__).resolve().parent.parent / "src" / "edgepipe" / "profiles" / "agent.py"


def build(name: str):
    import torch
    import torchvision

    if name == "resnet18":
        return torchvision.models.resnet18(weights=None).eval(), (3, 224, 224), "random"
    from edgepipe.zoo.digits_cnn import DigitsCNN

    model = DigitsCNN().eval()
    weights = "random (safetensors not installed)"
    try:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(Path(__file__).resolve().parent.parent / "src" /
                                        "edgepipe" / "zoo" / "digits-cnn.safetensors"))
        weights = "bundled (trained)"
    except ImportError:
        pass
    torch.manual_seed(0)
    return model, (3, 32, 32), weights


def run_agent(request: dict, folder: Path) -> dict:
    path = folder / "request.json"
    path.write_text(json.dumps(request))
    done = subprocess.run([sys.executable, str(AGENT), str(path)], capture_output=True,
                          text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(done.stderr[-1500:])
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json-out", type=Path, default=RESULTS / "cuda_energy.json")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--energy-seconds", type=float, default=8.0)
    args = parser.parse_args()
    import numpy as np
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU here: nothing to measure")
        return
    rows = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for model_name in ("digits-cnn", "resnet18"):
            model, shape, weights = build(model_name)
            for batch in (1, 32):
                x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0))
                program = torch.export.export(model, (x,))
                pt2 = folder / f"{model_name}-b{batch}.pt2"
                torch.export.save(program, pt2)
                np.save(folder / "x.npy", x.numpy())
                for precision in ("fp32", "fp16"):
                    result = run_agent({
                        "artifact": str(pt2), "runtime": "torch", "device": "cuda",
                        "precision": precision, "inputs": [str(folder / "x.npy")],
                        "threads": 1, "runs": 200, "duration_s": args.seconds,
                        "warmup_runs": 50, "warmup_s": 1.0,
                        "energy": {"device": "cuda", "idle_s": 3.0,
                                   "min_busy_s": args.energy_seconds}}, folder)
                    energy = result.get("energy", {})
                    row = {"model": model_name, "weights": weights, "batch": batch,
                           "precision": precision, "gpu": result["runtime"]["options"]["gpu"],
                           "p50_s": result["latency"]["p50_s"],
                           "count": result["latency"]["count"], "energy": energy,
                           "device_state": result.get("device_state")}
                    if energy.get("label") == "measured":
                        row["j_per_inference"] = energy["joules_per_inference"]
                        row["j_per_image"] = energy["joules_per_inference"] / batch
                    rows.append(row)
                    print(f"  {model_name} b{batch} {precision}: p50 "
                          f"{row['p50_s'] * 1e3:.3f} ms, {energy.get('label')}", flush=True)
    print(f"\nGPU: {rows[0]['gpu']}; energy from NVML (idle subtracted)")
    print(f"{'model':11} {'batch':>5} {'prec':>5} {'p50':>10} {'img/s':>9} {'idle W':>7} "
          f"{'busy W':>7} {'J/inference':>12} {'mJ/image':>9}")
    for r in rows:
        e = r["energy"]
        measured = e.get("label") == "measured"
        print(f"{r['model']:11} {r['batch']:5d} {r['precision']:>5} {r['p50_s'] * 1e3:7.3f} ms "
              f"{r['batch'] / r['p50_s']:9.0f} "
              f"{e['idle_w'] if measured else float('nan'):7.1f} "
              f"{e['busy_w'] if measured else float('nan'):7.1f} "
              f"{r.get('j_per_inference', float('nan')):12.5f} "
              f"{1e3 * r.get('j_per_image', float('nan')):9.3f}")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({"rows": rows, "when": time.strftime("%Y-%m-%d")},
                                        indent=2))
    print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
