"""Quantization-aware fine-tuning with knowledge distillation from the float model.

The loss is ``w * T^2 * KL(teacher_T || student_T)`` on logits softened by the temperature
``T`` (Hinton et al., 2015) plus ``(1 - w) * cross-entropy`` when the data is labelled;
unlabelled data trains on distillation alone. A seeded validation slice of the train split
(never the eval split) picks the best epoch and stops training after ``patience`` epochs
without improvement; the quantized model before fine-tuning counts as epoch 0, so
fine-tuning never returns a model worse on that slice than post-training quantization.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from edgepipe.compress.config import BinaryConfig, LowBitConfig, LowRankConfig
from edgepipe.data import Dataset
from edgepipe.export.base import log
from edgepipe.training import fit_best, kd_loss


def distill(student: Any, teacher: Any, train: Dataset,
            config: LowBitConfig | LowRankConfig | BinaryConfig,
            cosine: bool = False, threads: int | None = None) -> dict[str, Any]:
    """Fine-tune ``student`` in place on ``train``; a summary of what ran, for the record.

    ``cosine`` anneals the learning rate to zero over ``config.epochs`` (binary networks,
    whose weights flip sign, settle only as the steps shrink); otherwise it is constant.
    """
    started = time.perf_counter()
    labelled = train.labels is not None
    if not labelled:
        log.warning("Fine-tuning: the training data has no labels; training by distillation "
                    "from the float model only.")
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(train))
    count = max(1, round(config.val_fraction * len(train)))
    val, fit = train.subset(np.sort(order[:count])), train.subset(order[count:])
    if not len(fit):
        fit = val
    teacher = teacher.eval()
    val_teacher = _logits(teacher, val)
    generator = torch.Generator().manual_seed(config.seed)

    def step(batch: Any) -> torch.Tensor:
        arrays, labels = batch
        with torch.no_grad():
            soft = teacher(*arrays)
        return _loss(student(*arrays), soft, labels, config)

    fitted = fit_best(student.parameters(), [student],
                      lambda: _batches(fit, config.batch_size, generator), step,
                      lambda: _score(student, val, val_teacher, config, labelled),
                      epochs=config.epochs, lr=config.lr, patience=config.patience,
                      cosine=cosine, threads=threads)
    history, best_epoch = fitted.history, fitted.best_epoch
    seconds = time.perf_counter() - started
    metric = "top1" if labelled else "-distillation loss"
    log.info("QAT: %d epoch(s), best epoch %d (%s %.4f on %d validation samples) in %.1f s",
             fitted.epochs_run, best_epoch, metric, fitted.best_score[0], len(val), seconds)
    return {"labelled": labelled,
            "loss": "distillation + cross-entropy" if labelled else "distillation only",
            "epochs_run": fitted.epochs_run, "best_epoch": best_epoch,
            "validation": {"samples": len(val), "source": "slice of the train split",
                           "metric": metric, "by_epoch": [round(s[0], 5) for s in history],
                           "loss_by_epoch": [round(-s[1], 5) for s in history]},
            "train_samples": len(fit), "seconds": round(seconds, 2),
            "optimizer": f"Adam lr {config.lr}" + (", cosine to 0" if cosine else ""),
            "batch_size": config.batch_size,
            "temperature": config.distill_temperature, "distill_weight": config.distill_weight}


def _loss(logits: torch.Tensor, soft: torch.Tensor, labels: torch.Tensor | None,
          config: LowBitConfig | LowRankConfig | BinaryConfig) -> torch.Tensor:
    return kd_loss(logits, soft, labels, config.distill_temperature, config.distill_weight)


def _batches(data: Dataset, size: int,
             generator: torch.Generator) -> Any:
    order = torch.randperm(len(data), generator=generator).numpy()
    for start in range(0, len(data), size):
        index = order[start:start + size]
        arrays = [torch.from_numpy(np.ascontiguousarray(a[index])) for a in data.inputs.values()]
        labels = None if data.labels is None else torch.from_numpy(
            data.labels[index].astype(np.int64))
        yield arrays, labels


def _logits(model: Any, data: Dataset) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(*[torch.from_numpy(np.ascontiguousarray(a)) for a in data.inputs.values()])


def _score(student: Any, val: Dataset, teacher_logits: torch.Tensor, config: Any,
           labelled: bool) -> tuple[float, float]:
    """Higher is better: (top-1, -loss) on the validation slice; unlabelled: (-KD, -KD).

    On a slice of a hundred-odd samples top-1 moves in steps and often ties; the loss
    breaks the ties.
    """
    logits = _logits(student, val)
    if not labelled:
        loss = -float(_loss(logits, teacher_logits, None, config))
        return loss, loss
    assert val.labels is not None
    labels = torch.from_numpy(val.labels.astype(np.int64))
    loss = -float(_loss(logits, teacher_logits, labels, config))
    return float((logits.argmax(1).numpy() == val.labels).mean()), loss
