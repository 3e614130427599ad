"""Benchmark: split computing with a trained bottleneck, against cutting without one.

On ``builtin:digits`` at 3x32x32 (the 8x8 digits upsampled, as every CNN here sees them):
the bundled digits CNN and torchvision resnet18 trained briefly on the same data (weights
cached by ``quantize_torchvision.py``'s trainer). For each cut and bottleneck size,
``edgepipe.split.api.split_model`` trains the bottleneck in two stages and measures, on the
eval split: accuracy of the original and of the split model end to end in ONNX Runtime,
and the bytes per sample crossing the link (packed codes, and zlib'd). The naive
alternative is measured in the same run: the same cut with no bottleneck, the raw tensor
quantized to 8 bits per tensor (scale from the 99.9th percentile on calibration data) and
sent as is.

Goals (issue 8): at least 95% fewer bytes than the raw float tensor at the cut, fewer bytes
than the uint8 input, within 1 point of the original's accuracy.

    PYTHONPATH=src:benchmarks python benchmarks/split.py [--json-out F]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
CASES = [("builtin:digits-cnn", "pool1", 2), ("builtin:digits-cnn", "pool1", 4),
         ("builtin:digits-cnn", "pool2", 2), ("builtin:digits-cnn", "pool2", 4),
         ("torchvision:resnet18", "layer1", 4), ("torchvision:resnet18", "layer2", 4),
         ("torchvision:resnet18", "layer2", 8)]


def naive(original_head: Any, tail_original: Any, data: Any, name: str) -> dict[str, Any]:
    """Cut without a bottleneck: the raw tensor at the cut quantized to 8 bits."""
    import torch

    with torch.no_grad():
        calib = original_head(torch.from_numpy(data.calib.inputs[name]))
        low = float(min(0.0, calib.min()))
        high = float(torch.quantile(calib.flatten()[:1_000_000], 0.999))
        scale = (high - low) / 255
        cut = original_head(torch.from_numpy(data.eval.inputs[name]))
        codes = torch.clamp(torch.round((cut - low) / scale), 0, 255)
        logits = tail_original(codes * scale + low).numpy()
    accuracy = float((logits.argmax(1) == data.eval.labels).mean())
    return {"bytes": int(np.prod(cut.shape[1:])), "accuracy": accuracy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json-out", type=Path, default=RESULTS / "split.json")
    args = parser.parse_args()
    import copy

    import torch

    from edgepipe.data import load_data_for_model, make_splits
    from edgepipe.model import load_model
    from edgepipe.split.api import SplitConfig, build_split, split_model
    from edgepipe.split.points import split_graph, trace

    rows = []
    for spec, at, channels in CASES:
        started = time.time()
        if spec.startswith("torchvision:"):
            from quantize_torchvision import train

            weights, _ = train("resnet18", 6, 2, False)
            loaded = load_model(spec, weights=weights, model_args={"num_classes": 10},
                                input_shape=(1, 3, 32, 32))
        else:
            loaded = load_model(spec)
        data = make_splits(load_data_for_model("builtin:digits", loaded.inputs), seed=0)
        config = SplitConfig(at=at, bottleneck=channels)
        parts = build_split(loaded, config)
        sample = torch.from_numpy(loaded.sample_inputs(1)[0])
        _, tail_original = split_graph(trace(copy.deepcopy(loaded.module), sample),
                                       parts.point.index)
        baseline = naive(parts.original_head, tail_original, data, loaded.inputs[0].name)
        with tempfile.TemporaryDirectory() as out:
            result = split_model(loaded, config, data, out)
        wire, accuracy = result.bytes_per_sample, result.accuracy
        rows.append({"model": spec, "at": at, "bottleneck": channels,
                     "shape": result.cut["shape"], "bytes": wire, "accuracy": accuracy,
                     "naive_8bit": baseline, "training": result.training,
                     "seconds": time.time() - started})
        print(f"  {spec} at {at}, {channels} ch: {wire['packed_bytes']} B, "
              f"{100 * accuracy['split_onnxruntime']:.2f}% "
              f"(original {100 * accuracy['original']:.2f}%)", flush=True)
    print_table(rows)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({"rows": rows}, indent=2, default=str))
    print(f"wrote {args.json_out}")


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'model':22} {'cut':7} {'tensor':10} {'ch':>3} {'bytes':>6} {'zlib':>6} "
          f"{'vs input':>8} {'vs float':>8} {'original':>8} {'split':>7} {'naive B':>8} "
          f"{'naive acc':>9}")
    for r in rows:
        w, a, n = r["bytes"], r["accuracy"], r["naive_8bit"]
        print(f"{r['model']:22} {r['at']:7} {'x'.join(map(str, r['shape'][1:])):10} "
              f"{r['bottleneck']:3d} {w['packed_bytes']:6d} {w['zlib_bytes_mean']:6.0f} "
              f"{100 * w['vs_input']:7.1f}% {100 * w['vs_raw_float']:7.2f}% "
              f"{100 * a['original']:7.2f}% {100 * a['split_onnxruntime']:6.2f}% "
              f"{n['bytes']:8d} {100 * n['accuracy']:8.2f}%")
    print("bytes: packed codes per sample; input: 3x32x32 uint8 = 3072 B; accuracy on the "
          "359-sample eval split, end to end in ONNX Runtime")


if __name__ == "__main__":
    main()
