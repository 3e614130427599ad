"""Benchmark: peak activation memory of MCUNetV2-style patch-based inference.

For torchvision mobilenet_v2 (random weights with seeded random batch-norm statistics, so
activations are of order 1) at 96x96 and 144x144 (and mobilenet_v2 width 0.35, as MCUs use),
``edgepipe.analysis.patch_plan.search`` tries every split point and a 2x2, 3x3 and 4x4
grid; the table shows the layer-by-layer baseline, the best plan, its peak (int8: one byte
an element; the input image streamed per patch, and held), the reduction, the extra MACs
of the patch stage, and the max |difference| of the whole model's output against the
full-map run in torch (with the output's scale). MCUNetV2 reports 4-8x lower peak memory.

    PYTHONPATH=src python benchmarks/patch_memory.py [--json-out F]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CASES = [("mobilenet_v2", 1.0, 96), ("mobilenet_v2", 1.0, 144), ("mobilenet_v2", 0.35, 144)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json-out", type=Path, default=RESULTS / "patch_memory.json")
    args = parser.parse_args()
    import torchvision

    from edgepipe.analysis.patch_plan import check, randomize_batchnorm, search

    rows = []
    for name, width, size in CASES:
        started = time.time()
        model = getattr(torchvision.models, name)(weights=None, width_mult=width).eval()
        randomize_batchnorm(model)
        shape = (3, size, size)
        plans = search(model, shape)
        best = plans[0]
        diff, scale = check(model, shape, best.split, best.grid)
        rows.append({"model": f"{name} x{width}", "input": f"{size}x{size}",
                     "best": best.to_dict(), "max_abs_diff": diff, "output_scale": scale,
                     "candidates": [p.to_dict() for p in plans], "seconds": time.time() - started})
    print(f"\n{'model':20} {'input':>8} {'baseline':>10} {'plan':>10} {'patch peak':>11} "
          f"{'+input':>9} {'reduction':>9} {'extra MACs':>10} {'max|diff|':>10}")
    for r in rows:
        b = r["best"]
        print(f"{r['model']:20} {r['input']:>8} {b['baseline_peak_bytes'] / 1024:7.1f} KB "
              f"{'blocks<' + str(b['split']) + ' ' + str(b['grid']) + 'x' + str(b['grid']):>10} "
              f"{b['peak_bytes'] / 1024:8.1f} KB {b['peak_with_input_bytes'] / 1024:6.1f} KB "
              f"{b['reduction']:8.2f}x {100 * b['extra_macs_fraction']:9.1f}% "
              f"{r['max_abs_diff']:.1e} (of {r['output_scale']:.2f})")
    print("int8 activations (1 byte an element); MCUNetV2 reports 4-8x")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({"rows": rows}, indent=2))
    print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
