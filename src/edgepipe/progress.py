"""Progress of the long steps, for whoever displays it; silent unless someone listens.

Library code reports with :func:`report` (a step name, how much of it is done out of how
much, and the step's own figure: ``epoch 3/20 top-1 0.9512``, ``batch 4/8``, ``tflite``).
Nothing is shown unless a caller listens: the public verbs (``compress``, ``export_model``,
``split_model``, ``run_recipe``) take ``progress=callback``, which receives a
:class:`ProgressEvent` for every report made while they run, from any depth (a context
variable carries it; a verb called inside another reports to the outer callback). The CLI
passes one that draws determinate bars on stderr; the Python API stays silent by default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class ProgressEvent:
    """``done`` of ``total`` units of ``step`` are finished; ``figure`` is the step's own
    figure, as text (the epoch's score, the batch, the format just made)."""

    step: str
    done: int
    total: int
    figure: str = ""


ProgressCallback = Callable[[ProgressEvent], None]

_listener: ContextVar[ProgressCallback | None] = ContextVar("edgepipe_progress", default=None)


def report(step: str, done: int, total: int, figure: str = "") -> None:
    """Tell the listener, if any, that ``done`` of ``total`` of ``step`` are finished."""
    listener = _listener.get()
    if listener is not None:
        listener(ProgressEvent(step, done, total, figure))


@contextlib.contextmanager
def reporting(callback: ProgressCallback | None) -> Iterator[None]:
    """Send the block's reports to ``callback``; None keeps the current listener (an outer
    verb's, or nobody)."""
    if callback is None:
        yield
        return
    token = _listener.set(callback)
    try:
        yield
    finally:
        _listener.reset(token)


class Counted(Iterable[T]):
    """``items``, reporting ``step`` ``i/len(items)`` as each is taken (once per pass over
    them: a calibrator that reads them twice reports twice)."""

    def __init__(self, items: Iterable[T], step: str, unit: str = "batch") -> None:
        self.items = list(items)
        self.step, self.unit = step, unit

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[T]:
        total = len(self.items)
        for index, item in enumerate(self.items, 1):
            yield item
            report(self.step, index, total, f"{self.unit} {index}/{total}")


def epoch_figure(epoch: int, epochs: int, score: Any, metric: str = "score") -> str:
    """``epoch 3/20 top-1 0.9512``: a training epoch's figure (a tuple score shows its
    first value). A score that is a negated loss (``metric`` ``-MSE``) shows the loss
    (``MSE 0.0123``)."""
    value = score[0] if isinstance(score, tuple) else score
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"epoch {epoch}/{epochs} {metric} {value}"
    if metric.startswith("-"):
        metric, number = metric[1:], -number
    return f"epoch {epoch}/{epochs} {metric} {number:.4f}"


@contextlib.contextmanager
def timed(step: str, expected_s: float, every_s: float = 0.25) -> Iterator[None]:
    """Report ``step`` by the seconds elapsed out of about ``expected_s`` while the block
    runs, from a thread (for work that reports nothing itself, such as a profile timed in
    a child process: nothing is added to what is timed). Nothing runs without a listener."""
    import contextvars
    import threading
    import time

    if _listener.get() is None:
        yield
        return
    total = max(1, round(expected_s))
    start, stop = time.monotonic(), threading.Event()

    def tick() -> None:
        while not stop.wait(every_s):
            elapsed = time.monotonic() - start
            report(step, min(int(elapsed), total - 1), total,
                   f"{elapsed:.1f} s of about {expected_s:.0f} s")

    thread = threading.Thread(target=contextvars.copy_context().run, args=(tick,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        report(step, total, total, f"{time.monotonic() - start:.1f} s")
