"""Train the bundled models and write their weights and training records.

    python -m edgepipe.zoo.train [--models digits-cnn digits-mlp fashion-mnist-cnn] [--out DIR]
                                 [--threads 2]

Deterministic: seeded torch and numpy, ``torch.use_deterministic_algorithms``, the
``make_splits(..., seed=0)`` of the model's data (``builtin:digits``; ``builtin:fashion-mnist``,
whose eval part is its 10,000 t10k test images). A validation part is held out of the train
part (stratified, seeded) for early stopping; the eval part is used once, at the end, so the
recorded eval accuracy is not chosen on the split it reports.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgepipe.data import Dataset, load_data_for_model, make_splits
from edgepipe.tensors import TensorSpec
from edgepipe.zoo import MODELS, ZOO_DIR, build

DATA_SPECS = {"digits-cnn": "builtin:digits", "digits-mlp": "builtin:digits",
              "fashion-mnist-cnn": "builtin:fashion-mnist"}


@dataclass(frozen=True)
class TrainConfig:
    """How one model is trained (saved into its record)."""

    max_epochs: int
    patience: int
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    split_seed: int = 0
    eval_fraction: float = 0.2
    val_fraction: float = 0.15  # of the train part, for early stopping
    flip: bool = False  # mirror a random half of each training batch left-right


CONFIGS = {
    "digits-cnn": TrainConfig(max_epochs=20, patience=8),
    "digits-mlp": TrainConfig(max_epochs=40, patience=40, lr=2e-3),
    "fashion-mnist-cnn": TrainConfig(max_epochs=8, patience=8, batch_size=128,
                                     val_fraction=0.1, flip=True),
}


def train(name: str, config: TrainConfig, out_dir: Path = ZOO_DIR) -> dict[str, Any]:
    """Train one built-in model; write ``<name>.safetensors`` and ``<name>.json``."""
    from safetensors.torch import save_file

    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True)
    started = time.perf_counter()
    inputs = [TensorSpec("input", MODELS[name], "float32")]
    spec = DATA_SPECS[name]
    data = load_data_for_model(spec, inputs, num_classes=10)
    parts = make_splits(data, seed=config.split_seed, eval_fraction=config.eval_fraction)
    # Early stopping looks at a validation slice of train, never at eval.
    fit = make_splits(parts.train, seed=config.split_seed, eval_fraction=config.val_fraction,
                calib_size=0)
    load_s = time.perf_counter() - started

    model = build(name)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.max_epochs)
    rng = np.random.default_rng(config.seed)
    x_train = torch.from_numpy(fit.train.x)
    y_train = torch.from_numpy(fit.train.labels)
    best = {"accuracy": -1.0, "epoch": 0, "state": None}
    history = []
    started = time.perf_counter()
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        order = torch.from_numpy(np.argsort(rng.random(len(x_train)), kind="stable"))
        for batch in order.split(config.batch_size):
            optimizer.zero_grad()
            x = x_train[batch]
            if config.flip:
                mirror = torch.from_numpy(rng.random(len(batch)) < 0.5)
                x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
            loss = nn.functional.cross_entropy(model(x), y_train[batch])
            loss.backward()
            optimizer.step()
        schedule.step()
        accuracy = accuracy_of(model, fit.eval)
        history.append(round(accuracy, 4))
        print(f"{name}: epoch {epoch}, validation accuracy {accuracy:.4f}, "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        if accuracy > best["accuracy"]:
            best = {"accuracy": accuracy, "epoch": epoch,
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        elif epoch - best["epoch"] >= config.patience:
            break
    train_s = time.perf_counter() - started

    model.load_state_dict(best["state"])
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    record = {
        "model": name,
        "input_shape": list(MODELS[name]),
        "parameters": sum(p.numel() for p in model.parameters()),
        "data": {"spec": spec, "shapes": data.describe().shapes,
                 "normalize": "unit", "split": parts.describe().to_dict(),
                 "eval_fraction": config.eval_fraction,
                 "eval_part": "the source's test files (t10k)"
                 if data.predefined_eval is not None else "seeded, stratified"},
        "preprocessing": data.preprocessing.to_dict() if data.preprocessing else None,
        "config": asdict(config),
        "epochs_run": len(history),
        "best_epoch": best["epoch"],
        "eval_accuracy": round(accuracy_of(model, parts.eval), 4),
        "val_accuracy": round(best["accuracy"], 4),
        "train_accuracy": round(accuracy_of(model, fit.train), 4),
        "val_accuracy_per_epoch": history,
        "val_count": len(fit.eval),
        "train_time_s": round(train_s, 2),
        "data_load_time_s": round(load_s, 2),
        "environment": {"torch": torch.__version__, "numpy": np.__version__,
                        "python": platform.python_version(), "machine": platform.machine(),
                        "threads": torch.get_num_threads()},
        "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "note": "early stopping picks the epoch with the best accuracy on a validation slice "
                "of train (val_accuracy); eval_accuracy is measured once, on the held-out eval "
                "split",
    }
    (out_dir / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def accuracy_of(model: nn.Module, data: Dataset, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on a labelled single-input dataset."""
    model.eval()
    correct = 0
    with torch.inference_mode():
        for (x,), y in data.batches(batch_size):
            correct += int((model(torch.from_numpy(x)).argmax(1).numpy() == y).sum())
    return correct / len(data)


def main(argv: list[str] | None = None) -> int:
    """Train the chosen models and print one summary line per model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--out", type=Path, default=ZOO_DIR, help="folder for weights + records")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in args.models:
        record = train(name, CONFIGS[name], args.out)
        print(f"{name}: eval accuracy {record['eval_accuracy']:.4f} "
              f"(train {record['train_accuracy']:.4f}), best epoch {record['best_epoch']} of "
              f"{record['epochs_run']}, {record['parameters']} parameters, trained in "
              f"{record['train_time_s']:.1f} s -> {args.out / (name + '.safetensors')}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
