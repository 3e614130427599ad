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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgepipe.compress import checkpoint as ckpt
from edgepipe.compress.base import CompressJob
from edgepipe.compress.config import BinaryConfig, LowBitConfig, LowRankConfig
from edgepipe.compress.outputs import classifier_index, flat_outputs, multi_loss
from edgepipe.data import Dataset
from edgepipe.export.base import log
from edgepipe.training import fit_best


def fine_tune(student: Any, teacher: Any, job: CompressJob, tag: str, notes: list[str],
              what: str, unlabelled: str) -> dict[str, Any]:
    """:func:`distill` on the job's train split (checkpointed in the job's folder under
    ``tag``); when the labels do not take part, a note ``what: why; unlabelled`` is added
    to ``notes``. The summary of what ran, for the tool record."""
    assert job.data is not None  # the backends check for data before training
    train = job.data.train
    summary = distill(student, teacher, train, job.config,  # type: ignore[arg-type]
                      threads=job.threads, checkpoints=job.checkpoints,
                      tag=f"{job.source.name}.{tag}")
    if not summary["labelled"]:
        notes.append(f"{what}: " + ("the training data has no labels" if train.labels is None
                                    else "the labels fit no classifier output of the model")
                     + f"; {unlabelled}")
    return summary


def distill(student: Any, teacher: Any, train: Dataset,
            config: LowBitConfig | LowRankConfig | BinaryConfig,
            cosine: bool = False, threads: int | None = None,
            checkpoints: Path | None = None, tag: str = "trained") -> dict[str, Any]:
    """Fine-tune ``student`` in place on ``train``; a summary of what ran, for the record.

    ``cosine`` anneals the learning rate to zero over ``config.epochs`` (binary networks,
    whose weights flip sign, settle only as the steps shrink); otherwise it is constant.
    Models with several outputs (tuples, dicts) train on every output (see
    :func:`~edgepipe.compress.outputs.multi_loss`). ``checkpoints``: a folder where the
    trained student is saved (see :mod:`edgepipe.compress.checkpoint`), and found again
    when the same training is asked for.
    """
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(train))
    count = max(1, round(config.val_fraction * len(train)))
    val, fit = train.subset(np.sort(order[:count])), train.subset(order[count:])
    if not len(fit):
        fit = val
    teacher = teacher.eval()
    val_teacher = _logits(teacher, val)
    targets = flat_outputs(val_teacher)
    classifier = (classifier_index(targets, val.labels)
                  if len(targets) > 1 or targets[0].dim() == 2 else None)
    labelled = train.labels is not None and classifier is not None
    path = None
    if checkpoints is not None:
        path = checkpoints / (f"{tag}-" + ckpt.fingerprint(
            student, teacher, config.to_dict(), dict(train.inputs), train.labels, cosine)
                              + ".pt")
        saved = ckpt.load(path, [student])
        if saved is not None:
            return saved
    if train.labels is None:
        log.warning("Fine-tuning: the training data has no labels; training by distillation "
                    "from the float model only.")
    elif not labelled:
        log.warning("Fine-tuning: the labels fit no classifier output of the model (an "
                    "(N, classes) output); training by distillation from the float model "
                    "only, on every output.")
    generator = torch.Generator().manual_seed(config.seed)

    def step(batch: Any) -> torch.Tensor:
        arrays, labels = batch
        with torch.no_grad():
            soft = teacher(*arrays)
        return _loss(student(*arrays), soft, labels if labelled else None, config)

    fitted = fit_best(student.parameters(), [student],
                      lambda: _batches(fit, config.batch_size, generator), step,
                      lambda: _score(student, val, val_teacher, config, labelled, classifier),
                      epochs=config.epochs, lr=config.lr, patience=config.patience,
                      cosine=cosine, threads=threads, report_as=f"{config.method} training",
                      metric="top-1" if labelled else "-KD loss")
    history, best_epoch = fitted.history, fitted.best_epoch
    seconds = time.perf_counter() - started
    metric = "top1" if labelled else "-distillation loss"
    log.info("QAT: %d epoch(s), best epoch %d (%s %.4f on %d validation samples) in %.1f s",
             fitted.epochs_run, best_epoch, metric, fitted.best_score[0], len(val), seconds)
    loss = "distillation + cross-entropy" if labelled else "distillation only"
    if len(targets) > 1:
        loss += (f" on {len(targets)} outputs (knowledge distillation on the classifier "
                 "output, mean squared error over the float output's variance on the others)")
    record = {"labelled": labelled,
              "loss": loss,
              "epochs_run": fitted.epochs_run, "best_epoch": best_epoch,
              "validation": {"samples": len(val), "source": "slice of the train split",
                             "metric": metric, "by_epoch": [round(s[0], 5) for s in history],
                             "loss_by_epoch": [round(-s[1], 5) for s in history]},
              "train_samples": len(fit), "seconds": round(seconds, 2),
              "optimizer": f"Adam lr {config.lr}" + (", cosine to 0" if cosine else ""),
              "batch_size": config.batch_size,
              "temperature": config.distill_temperature,
              "distill_weight": config.distill_weight}
    ckpt.save(path, [student], record)
    return record


def _loss(logits: Any, soft: Any, labels: torch.Tensor | None,
          config: LowBitConfig | LowRankConfig | BinaryConfig) -> torch.Tensor:
    return multi_loss(logits, soft, labels, config.distill_temperature, config.distill_weight)


def _batches(data: Dataset, size: int,
             generator: torch.Generator) -> Any:
    order = torch.randperm(len(data), generator=generator).numpy()
    for start in range(0, len(data), size):
        index = order[start:start + size]
        arrays = [torch.from_numpy(np.ascontiguousarray(a[index])) for a in data.inputs.values()]
        labels = None if data.labels is None else torch.from_numpy(
            data.labels[index].astype(np.int64))
        yield arrays, labels


def _logits(model: Any, data: Dataset) -> Any:
    model.eval()
    with torch.no_grad():
        return model(*[torch.from_numpy(np.ascontiguousarray(a)) for a in data.inputs.values()])


def _score(student: Any, val: Dataset, teacher_logits: Any, config: Any,
           labelled: bool, classifier: int | None = 0) -> tuple[float, float]:
    """Higher is better: (top-1, -loss) on the validation slice; unlabelled: (-KD, -KD).

    On a slice of a hundred-odd samples top-1 moves in steps and often ties; the loss
    breaks the ties.
    """
    logits = _logits(student, val)
    if not labelled:
        loss = -float(_loss(logits, teacher_logits, None, config))
        return loss, loss
    assert val.labels is not None and classifier is not None
    labels = torch.from_numpy(val.labels.astype(np.int64))
    loss = -float(_loss(logits, teacher_logits, labels, config))
    predicted = flat_outputs(logits)[classifier].argmax(1).numpy()
    return float((predicted == val.labels).mean()), loss
