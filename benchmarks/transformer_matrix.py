"""Benchmark: which transformer architectures go through which verb (issue 21, item 2).

Tiny random-weight models built here (nothing is downloaded), one per architecture edgepipe
claims: a BERT text classifier (``hf:`` folder with a WordPiece tokenizer), a ViT image
classifier and Whisper's audio classifier (``hf:`` folders), and a plain
``torch.nn.TransformerEncoder`` (a Python factory, its fused inference path on). Each goes
through every export format and every compression method in every format that method
offers, with the same calls the CLI makes, one at a time, so one failure costs one cell::

    PYTHONPATH=src python benchmarks/transformer_matrix.py [--json-out F]

A cell is the artifact's SQNR against the source model on the eval split (the export's
parity SQNR for export), or the error's reference and first line. The text model's data is
96 random sentences of its vocabulary, tokenized by its own tokenizer; the others' are 96
seeded N(0,1) inputs in an .npz: enough to say whether a path works, not how accurate a
trained model would stay. Training methods run one epoch.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
WORDS = ["the", "a", "cat", "dog", "sat", "on", "mat", "is", "good", "bad", "very", "movie",
         "was", "not", "fun", "long"]
EXPORTS = ("onnx", "openvino", "tflite", "executorch")
# (method, options) and the formats each is tried in: every format the method offers
METHODS: list[tuple[str, dict[str, Any]]] = [
    ("int8", {}), ("int8-dynamic", {}), ("fp16", {}),
    ("int4-weight", {"group_size": 32}), ("w4a8", {"epochs": 1}), ("lowrank", {}),
    ("binary", {"epochs": 1, "patience": 1}),
]

TRANSFORMER_ENCODER = '''
import torch
from torch import nn


class Classifier(nn.Module):
    """A plain TransformerEncoder over 16 tokens of 32 features, mean-pooled, 4 classes."""

    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(32, 2, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        return self.head(self.encoder(x).mean(1))


def build():
    torch.manual_seed(0)
    return Classifier().eval()
'''


def build_models(root: Path) -> dict[str, dict[str, Any]]:
    """Each architecture's MODEL spec, its loading options and its data."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertTokenizerFast,
        ViTConfig,
        ViTForImageClassification,
        WhisperConfig,
        WhisperForAudioClassification,
    )

    torch.manual_seed(0)
    bert = root / "bert"
    BertForSequenceClassification(BertConfig(
        vocab_size=64, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, max_position_embeddings=32, num_labels=2)).save_pretrained(bert)
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                      cls_token="[CLS]", sep_token="[SEP]",
                      mask_token="[MASK]").save_pretrained(bert)
    rng = np.random.default_rng(0)
    texts = root / "texts.txt"
    texts.write_text("\n".join(" ".join(rng.choice(WORDS, size=int(rng.integers(3, 12))))
                               for _ in range(96)) + "\n", encoding="utf-8")
    vit = root / "vit"
    ViTForImageClassification(ViTConfig(
        image_size=32, patch_size=8, num_channels=3, hidden_size=64, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=128, num_labels=3)).save_pretrained(vit)
    whisper = root / "whisper"
    WhisperForAudioClassification(WhisperConfig(
        d_model=64, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=128,
        decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=128, num_mel_bins=16,
        max_source_positions=50, num_labels=3)).save_pretrained(whisper)
    factory = root / "encoder_model.py"
    factory.write_text(TRANSFORMER_ENCODER, encoding="utf-8")
    def noise(name: str, key: str, shape: tuple[int, ...]) -> str:
        path = root / f"{name}.npz"
        np.savez(path, **{key: rng.standard_normal((96, *shape)).astype(np.float32)})
        return str(path)

    return {
        "BERT (hf, text)": {"spec": f"hf:{bert}", "data": str(texts), "inputs": None},
        "ViT (hf, image)": {"spec": f"hf:{vit}", "inputs": None,
                            "data": noise("vit", "pixel_values", (3, 32, 32))},
        "Whisper encoder (hf, audio)": {"spec": f"hf:{whisper}", "inputs": None,
                                        "data": noise("whisper", "input_features", (16, 100))},
        "nn.TransformerEncoder": {"spec": f"{factory}:build", "inputs": ["x:1x16x32:float32"],
                                  "data": noise("encoder", "x", (16, 32))},
    }


def _short(exc: BaseException) -> str:
    reference = getattr(exc, "reference", None)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{reference}: {text[:140]}" if reference else text[:160]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json-out", type=Path, default=RESULTS / "transformer_matrix.json")
    parser.add_argument("--table", type=Path, help="print the table of an earlier run's JSON")
    args = parser.parse_args()
    if args.table is not None:
        print_table(json.loads(args.table.read_text())["cells"])
        return

    from edgepipe.compress import compress, make_config
    from edgepipe.compress.config import config_class
    from edgepipe.export.api import export_model
    from edgepipe.model import load_model
    from edgepipe.tensors import parse_input_option

    started = time.time()
    root = Path(tempfile.mkdtemp(prefix="transformer-matrix-"))
    cells: list[dict[str, Any]] = []
    for name, model in build_models(root / "models").items():
        inputs = [parse_input_option(t) for t in model["inputs"]] if model["inputs"] else None
        loaded = load_model(model["spec"], inputs=inputs)
        data = model["data"]
        for fmt in EXPORTS:
            out = root / "out" / f"{len(cells)}"
            t0 = time.time()
            try:
                result = export_model(loaded, out, formats=(fmt,)).to_dict()
                (artifact,) = result["artifacts"]
                worst = min(o["sqnr_db"] for o in artifact["parity"]["outputs"])
                cell = {"ok": bool(artifact["parity"]["passed"]), "sqnr_db": worst}
            except Exception as exc:  # a failed cell is a result, not the end of the run
                cell = {"ok": False, "error": _short(exc)}
            cells.append({"model": name, "verb": "export", "format": fmt, **cell,
                          "seconds": round(time.time() - t0, 1)})
            print(f"{name} export {fmt}: {cell}", file=sys.stderr, flush=True)
        for method, options in METHODS:
            for fmt in config_class(method).backends:
                out = root / "out" / f"{len(cells)}"
                t0 = time.time()
                try:
                    config = make_config(method, formats=[fmt], **options)
                    result = compress(loaded, config, out, data).to_dict()
                    (artifact,) = result["artifacts"]
                    outputs = artifact["metrics"]["eval"]["outputs"]
                    cell = {"ok": True, "sqnr_db": min(o["sqnr_db"] for o in outputs)}
                except Exception as exc:
                    cell = {"ok": False, "error": _short(exc)}
                cells.append({"model": name, "verb": method, "format": fmt, **cell,
                              "seconds": round(time.time() - t0, 1)})
                print(f"{name} {method} {fmt}: {cell}", file=sys.stderr, flush=True)

    print_table(cells)
    document = {"command": "PYTHONPATH=src python benchmarks/transformer_matrix.py "
                + " ".join(sys.argv[1:]), "machine": platform.processor() or platform.machine(),
                "seconds": round(time.time() - started, 1), "cells": cells}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(document, indent=2))
    print(f"wrote {args.json_out}")


def _reason(error: str) -> str:
    """``quantization-failed: quantization-failed: X`` (reference, then the message that
    starts with it) -> ``quantization-failed: X``."""
    head, _, rest = error.partition(": ")
    return rest if rest.startswith(head + ":") else error


def print_table(cells: list[dict[str, Any]]) -> None:
    """The matrix as a Markdown table: a row per verb and format, a column per model."""
    rows = list(dict.fromkeys((c["verb"], c["format"]) for c in cells))
    names = list(dict.fromkeys(c["model"] for c in cells))
    by = {(c["model"], c["verb"], c["format"]): c for c in cells}
    print("| verb | format | " + " | ".join(names) + " |")
    print("| --- | --- |" + " --- |" * len(names))
    for verb, fmt in rows:
        marks = []
        for name in names:
            cell = by.get((name, verb, fmt))
            if cell is None:
                marks.append("—")
            elif cell["ok"]:
                marks.append(f"{cell['sqnr_db']:.0f} dB" if cell.get("sqnr_db") is not None
                             else "ok")
            else:
                reason = _reason(cell.get("error", "parity failed"))
                marks.append("fails: " + reason[:90].replace("|", "/"))
        print(f"| {verb} | {fmt} | " + " | ".join(marks) + " |")
    print("cells: SQNR (worst output) of the artifact against the source model; export: the "
          "parity check's, compress: on the eval split")


if __name__ == "__main__":
    main()
