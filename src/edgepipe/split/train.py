"""Two-stage training of a split model (as BottleFit and sc2bench do it).

1. **Head distillation**: the new head, encoder, quantizer and decoder learn to reproduce
   the original model's tensor at the cut (mean squared error); the tail is not involved.
2. **Fine-tuning**: head, encoder and quantizer frozen (what the device sends is fixed), the
   decoder and tail train on the task loss plus knowledge distillation from the original
   model; without labels, on distillation alone.

With an entropy-coded bottleneck (``bottleneck.density``), stage 1 also trains the density
and minimizes ``MSE + rate_weight x bits per sample`` (the bits the density gives the
noise-relaxed codes; the density and the quantizer's step at 10x the learning rate);
given ``target_bytes`` instead, the weight is adjusted after each batch towards the target
(multiplied by the batch's estimated bytes / target, within x0.95 .. x1.05), and the
epochs whose estimated bytes on the validation slice meet the target rank above those that
do not.

Each stage keeps the epoch best on a seeded validation slice of the training data (never
the eval split) and stops after ``patience`` epochs without improvement.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from edgepipe.compress.outputs import classifier_index, flat_outputs, multi_loss
from edgepipe.json_types import JsonValue
from edgepipe.training import fit_best
from edgepipe.training_settings import (
    TRAINING_LIMITS,
    DistillSettings,
    check_limits,
    renamed_settings,
)


@dataclass
class SplitTraining(DistillSettings):
    """The two stages' settings: :class:`~edgepipe.training_settings.DistillSettings` (with the
    split's own defaults), the epochs of each stage, and the seed of the validation slice
    and batch order."""

    lr: float = 2e-3
    patience: int = 5
    val_fraction: float = 0.15
    distill_epochs: int = 30
    finetune_epochs: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        epochs = (int, 0, 100_000, "a whole number of epochs >= 0")
        check_limits(self, {"distill_epochs": epochs, "finetune_epochs": epochs,
                            **TRAINING_LIMITS})

    @classmethod
    def from_options(cls, options: Mapping[str, JsonValue]) -> SplitTraining:
        """From recipe options or a saved document (old spellings read, with a warning)."""
        return cls(**renamed_settings(options))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _batches(count: int, size: int, rng: np.random.Generator):
    order = rng.permutation(count)
    for start in range(0, count, size):
        yield order[start:start + size]


def _fit(params: list[Any], modules: list[nn.Module], step: Callable,
         score: Callable, count: int, epochs: int, options: SplitTraining,
         rng: np.random.Generator, stage: str, metric: str) -> dict:
    """Train ``params`` on ``step(index) -> loss`` over batches of ``range(count)``, the
    best ``score()`` kept (see :func:`edgepipe.training.fit_best`); each epoch is reported
    to the progress listener as ``split: STAGE`` with its score."""
    fitted = fit_best(params, modules, lambda: _batches(count, options.batch_size, rng), step,
                      score, epochs=epochs, lr=options.lr, patience=options.patience,
                      cosine=True, report_as=f"split: {stage}", metric=metric)
    return {"best_epoch": fitted.best_epoch, "epochs_run": fitted.epochs_run,
            "best_score": fitted.best_score, "history": fitted.history}


def train_split(original: nn.Module, original_head: nn.Module, head: nn.Module,
                bottleneck: nn.Module, tail: nn.Module, x: np.ndarray, y: np.ndarray | None,
                options: SplitTraining, *, rate_weight: float | None = None,
                target_bytes: float | None = None) -> dict[str, Any]:
    """Train in place; the record of both stages (and of the rate, with a density). Each
    epoch is reported to the progress listener (:mod:`edgepipe.progress`) with its
    validation score."""
    started = time.perf_counter()
    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    order = rng.permutation(len(x))
    n_val = max(1, int(len(x) * options.val_fraction))
    val, fit = order[:n_val], order[n_val:]
    xs = torch.from_numpy(np.ascontiguousarray(x)).float()
    ys = torch.from_numpy(y).long() if y is not None else None
    original.eval()
    original_head.eval()
    with torch.no_grad():
        target_cut = original_head(xs)
        teachers = flat_outputs(original(xs))
    # top-1 and cross-entropy where the labels fit a classifier output; otherwise every
    # output is trained and scored by distillation from the original model
    classifier = classifier_index(teachers, y)
    ys = ys if classifier is not None else None
    bottleneck.quantizer.calibrate(bottleneck.encoder(head(xs[fit[:512]])))

    xs_fit, cut_fit = xs[fit], target_cut[fit]

    density = getattr(bottleneck, "density", None)
    rate = _Rate(rate_weight, target_bytes) if density is not None else None

    def distill_step(index: np.ndarray) -> torch.Tensor:
        if rate is None:
            return F.mse_loss(bottleneck(head(xs_fit[index])), cut_fit[index])
        features = bottleneck.encoder(head(xs_fit[index]))
        mse = F.mse_loss(bottleneck.decoder(bottleneck.quantizer(features)), cut_fit[index])
        bits = density.bits(bottleneck.quantizer.scaled(features), noisy=True)
        loss = mse + rate.weight * bits.mean()
        rate.steer(float(bits.detach().mean()))
        return loss

    def distill_score() -> float:
        head.eval()
        bottleneck.eval()
        with torch.no_grad():
            mse = float(F.mse_loss(bottleneck(head(xs[val])), target_cut[val]))
            if rate is None:
                return -mse
            bits = density.bits(bottleneck.quantizer.scaled(bottleneck.encoder(head(xs[val]))),
                                noisy=False)
        return rate.score(mse, float(bits.mean()))

    params: list[Any] = [*head.parameters(), *bottleneck.parameters()]
    if rate is not None:
        # the density and the quantizer's step learn 10x faster: at the shared rate the
        # density lagged the codes and the step barely moved, and the rate did not fall
        fast = [*density.parameters(), bottleneck.quantizer.log_scale]
        ids = {id(p) for p in fast}
        params = [{"params": [p for p in params if id(p) not in ids]},
                  {"params": fast, "lr": 10 * options.lr}]
    stage1 = _fit(params, [head, bottleneck],
                  distill_step, distill_score, len(fit), options.distill_epochs,
                  options, rng, "head distillation", "-MSE" if rate is None else "score")
    if rate is not None:
        stage1["rate"] = rate.record(stage1["best_epoch"])
    for module in (head, bottleneck.encoder, bottleneck.quantizer):
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
    with torch.no_grad():
        sent = bottleneck.quantizer(bottleneck.encoder(head(xs)))

    def finetune_step(index: np.ndarray) -> torch.Tensor:
        rows = fit[index]
        return multi_loss(tail(bottleneck.decoder(sent[rows])), [t[rows] for t in teachers],
                          None if ys is None else ys[rows], options.distill_temperature,
                          options.distill_weight)

    def finetune_score() -> float:
        tail.eval()
        bottleneck.decoder.eval()
        with torch.no_grad():
            outputs = tail(bottleneck.decoder(sent[val]))
        if ys is None:
            return -float(multi_loss(outputs, [t[val] for t in teachers], None,
                                     options.distill_temperature, options.distill_weight))
        assert classifier is not None
        return float((flat_outputs(outputs)[classifier].argmax(1) == ys[val]).float().mean())

    stage2 = _fit([*bottleneck.decoder.parameters(), *tail.parameters()],
                  [bottleneck.decoder, tail], finetune_step, finetune_score, len(fit),
                  options.finetune_epochs, options, rng, "fine-tuning",
                  "top-1" if ys is not None else "-KD loss")
    return {"head_distillation": {**stage1, "score": "-MSE at the cut (validation)"
                                  if rate is None else rate.score_meaning},
            "fine_tuning": {**stage2, "score": "top-1 (validation)" if ys is not None
                            else "-distillation loss to the original (validation)",
                            "loss": ("task + distillation" if ys is not None
                                     else "distillation only (no labels)" if y is None
                                     else "distillation only (the labels fit no classifier "
                                     "output)") + (f", on {len(teachers)} outputs (KD on the "
                                                   "classifier output, MSE over the original's "
                                                   "variance on the others)"
                                                   if len(teachers) > 1 else "")},
            "options": options.to_dict(), "seconds": time.perf_counter() - started,
            "samples": {"fit": int(len(fit)), "validation": int(n_val)}}


class _Rate:
    """The rate term's weight, fixed or steered towards a target of bytes per sample (the
    density's bits / 8 plus the bitstream's header, on the validation slice)."""

    def __init__(self, weight: float | None, target_bytes: float | None) -> None:
        from edgepipe.split.entropy import DEFAULT_RATE_WEIGHT, HEADER_BYTES

        self.target = target_bytes
        self.weight = weight if weight is not None else DEFAULT_RATE_WEIGHT
        self.header = HEADER_BYTES
        self.weights: list[float] = [self.weight]  # the weight each epoch trained with
        self.estimated: list[float] = []  # validation bytes after each epoch (and before)

    def score(self, mse: float, bits: float) -> float:
        estimated = bits / 8 + self.header
        self.estimated.append(estimated)
        if self.target is None:
            return -(mse + self.weight * bits)
        self.weights.append(self.weight)
        return -mse - 1e3 * max(0.0, estimated / self.target - 1.0)  # meeting it first

    def steer(self, bits: float) -> None:
        """After each batch with a target: the weight times the batch's estimated bytes over
        the target, within x0.95 .. x1.05 (a running adjustment, not a search)."""
        if self.target is not None:
            self.weight *= min(1.05, max(0.95, (bits / 8 + self.header) / self.target))

    @property
    def score_meaning(self) -> str:
        if self.target is None:
            return "-(MSE at the cut + rate_weight x bits per sample) (validation)"
        return ("-MSE at the cut, less 1000 x the relative excess over target_bytes "
                "(validation)")

    def record(self, best_epoch: int) -> dict[str, Any]:
        # weights[0] is the first; score() appends the weight as each epoch ends (and once
        # before the first): the weight at the end of epoch e is weights[e + 1]
        return {"rate_weight": self.weights[min(best_epoch + 1, len(self.weights) - 1)],
                "target_bytes": self.target,
                "estimated_bytes_validation": self.estimated[best_epoch]
                if best_epoch < len(self.estimated) else None,
                "rate_weights_by_epoch": self.weights if self.target is not None else None,
                "estimated": "the density's bits of the rounded codes / 8 + the bitstream "
                             "header; the real bitstreams are measured on the eval split"}
