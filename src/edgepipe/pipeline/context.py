"""The run's shared state and its one way to run a step: ``Context`` (the recipe, OUT, the
step cache, the lazily loaded model and data) and :func:`run_step`, which answers from the
cache or runs the work, records the outcome and tells the progress display."""

from __future__ import annotations

import errno
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgepipe import __version__
from edgepipe.errors import EdgepipeError, first_line
from edgepipe.json_types import JsonObject
from edgepipe.pipeline.recipe import Recipe
from edgepipe.pipeline.steps import StepCache, digest
from edgepipe.progress import report


@dataclass(frozen=True)
class StepEvent:
    """A step starting or ending, for progress displays: the step's key, kind and label; at
    the end its status, its result or error (their JSON forms, as cached), whether the cache
    answered and how long it took."""

    event: Literal["start", "end"]
    step: str
    kind: str
    label: str
    status: str | None = None
    result: JsonObject | None = None
    error: JsonObject | None = None
    cached: bool = False
    seconds: float = 0.0


Events = Callable[[StepEvent], None]


@dataclass
class Context:
    recipe: Recipe
    out: Path
    cache: StepCache
    events: Events
    total: int = 0  # variants, for progress
    done: int = 0
    _loaded: Any = None
    _splits: Any = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    def loaded(self) -> Any:
        if self._loaded is None:
            from edgepipe.model import load_model
            from edgepipe.tensors import parse_shape

            spec = self.recipe.model
            self._loaded = load_model(
                spec.spec, weights=spec.weights, model_args=spec.args or None,
                input_shape=parse_shape(spec.input_shape) if spec.input_shape else None)
        return self._loaded

    def splits(self) -> Any:
        if self._splits is None:
            from edgepipe.data import splits_for
            from edgepipe.model import classifier_classes

            data = self.recipe.data
            self._splits = splits_for(data.spec, self.loaded().inputs,
                                      num_classes=classifier_classes(self.loaded()),
                                      seed=data.seed, normalize=data.normalize,
                                      tokenizer=self.loaded().tokenizer_folder)
        return self._splits


def run_step(context: Context, key: str, kind: str, label: str, config: dict[str, Any],
          work: Callable[[], dict[str, Any]], outputs: list[str]) -> dict[str, Any]:
    step_digest = digest({"kind": kind, "config": config, "edgepipe": __version__})
    cached = context.cache.get(key, step_digest)
    started = time.perf_counter()
    context.events(StepEvent("start", key, kind, label))
    report("recipe", context.done, context.total, f"{kind} {label}")
    if cached is not None:
        record = {"status": "ok", "result": cached, "cached": True, "seconds": 0.0}
    else:
        try:
            result = work()
            context.cache.put(key, step_digest, result, outputs)
            record = {"status": "ok", "result": result, "cached": False,
                      "seconds": round(time.perf_counter() - started, 2)}
        except Exception as exc:  # one failed step is reported; the run goes on
            context.cache.forget(key)
            error = ({"type": type(exc).__name__, "reference": exc.reference,
                      "message": exc.message, "hint": exc.hint}
                     if isinstance(exc, EdgepipeError) else
                     {"type": type(exc).__name__, "message": first_line(exc),
                      "hint": _hint(exc), "traceback": traceback.format_exc(limit=6)})
            record = {"status": "failed", "error": error, "cached": False,
                      "seconds": round(time.perf_counter() - started, 2)}
    context.steps.append({"step": key, "kind": kind, "status": record["status"],
                          "cached": record["cached"], "seconds": record["seconds"],
                          "digest": step_digest})
    context.events(StepEvent("end", key, kind, label, record["status"], record.get("result"),
                             record.get("error"), record["cached"], record["seconds"]))
    return record


def _hint(exc: BaseException) -> str | None:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "the disk is full: free some space and run again; finished steps are kept"
    return None
