"""The training loop shared by quantization-aware fine-tuning and split bottlenecks.

Adam over the given parameters, the modules' best state kept by a validation score (the
state before training counts as epoch 0, so training never returns something worse on the
validation slice than it started with), early stopping after ``patience`` epochs without
improvement, and the knowledge-distillation loss of Hinton et al. (2015).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from edgepipe.progress import epoch_figure, report


def kd_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None,
            temperature: float, weight: float) -> torch.Tensor:
    """``weight * T^2 * KL(teacher_T || student_T) + (1 - weight) * CE``; KD alone without
    labels."""
    kd = F.kl_div(F.log_softmax(logits / temperature, dim=1),
                  F.softmax(teacher_logits / temperature, dim=1),
                  reduction="batchmean") * temperature ** 2
    if labels is None:
        return kd
    return weight * kd + (1 - weight) * F.cross_entropy(logits, labels)


@dataclass
class Fitted:
    """What :func:`fit_best` ran: the best score and its epoch, and every epoch's score."""

    best_score: Any
    best_epoch: int
    history: list[Any] = field(default_factory=list)

    @property
    def epochs_run(self) -> int:
        return len(self.history) - 1


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """torch's intra-op threads set to ``threads`` (None: every usable core) for the block,
    then put back. The thread count changes the order of float sums and so, over hundreds of
    steps, what training reaches (seen: one digits sample of 359 after w2 QAT): pinning it
    makes a seeded run independent of whatever an earlier call left set process-wide."""
    from edgepipe.runtime.base import default_threads

    before = torch.get_num_threads()
    count = threads or default_threads()
    torch.set_num_threads(count)
    try:
        yield count
    finally:
        torch.set_num_threads(before)


def fit_best(params: Iterable[nn.Parameter], modules: list[nn.Module],
             batches: Callable[[], Iterable[Any]], step: Callable[[Any], torch.Tensor],
             score: Callable[[], Any], *, epochs: int, lr: float, patience: int,
             cosine: bool = False, threads: int | None = None,
             on_epoch: Callable[[int, Any], None] = lambda _epoch, _score: None,
             report_as: str | None = None, metric: str = "score") -> Fitted:
    """Train ``params`` on ``step(batch) -> loss`` for each of ``batches()`` per epoch; keep
    the modules' state with the highest ``score()`` (comparable values, higher is better),
    restore it and leave the modules in eval mode.

    ``cosine`` anneals the learning rate to zero over ``epochs``; otherwise it is constant.
    torch runs on ``threads`` (None: every usable core) while training: see
    :func:`torch_threads`. ``report_as``: the step name under which each epoch and its
    ``metric`` score are reported to the progress listener (:mod:`edgepipe.progress`).
    """
    if report_as is not None:
        on_epoch = _reporting_epochs(on_epoch, report_as, epochs, metric)
        report(report_as, 0, epochs, f"epoch 0/{epochs}")
    with torch_threads(threads):
        fitted = _train(params, modules, batches, step, score, epochs=epochs, lr=lr,
                        patience=patience, cosine=cosine, on_epoch=on_epoch)
    if report_as is not None and fitted.epochs_run < epochs:  # stopped early: the bar is full
        report(report_as, epochs, epochs, f"stopped after epoch {fitted.epochs_run}, best "
               f"{fitted.best_epoch}")
    return fitted


def _reporting_epochs(on_epoch: Callable[[int, Any], None], step: str, epochs: int,
                      metric: str) -> Callable[[int, Any], None]:
    def both(epoch: int, score: Any) -> None:
        on_epoch(epoch, score)
        report(step, epoch, epochs, epoch_figure(epoch, epochs, score, metric))

    return both


def _train(params: Iterable[nn.Parameter], modules: list[nn.Module],
           batches: Callable[[], Iterable[Any]], step: Callable[[Any], torch.Tensor],
           score: Callable[[], Any], *, epochs: int, lr: float, patience: int, cosine: bool,
           on_epoch: Callable[[int, Any], None]) -> Fitted:
    optimizer = torch.optim.Adam(params, lr=lr)
    schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, epochs))
                if cosine else None)
    best, best_epoch = score(), 0
    states = [copy.deepcopy(m.state_dict()) for m in modules]
    history = [best]
    for epoch in range(1, epochs + 1):
        for module in modules:
            module.train()
        for batch in batches():
            loss = step(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if schedule is not None:
            schedule.step()
        current = score()
        history.append(current)
        on_epoch(epoch, current)
        if current > best:
            best, best_epoch = current, epoch
            states = [copy.deepcopy(m.state_dict()) for m in modules]
        elif epoch - best_epoch >= patience:
            break
    for module, state in zip(modules, states, strict=True):
        module.load_state_dict(state)
        module.eval()
    return Fitted(best, best_epoch, history)
