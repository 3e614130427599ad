"""The one shape every runtime takes: a :class:`Session` that runs numpy arrays.

Export checks its artifacts through a Session, and so will ``eval`` and ``profile``: the
number a step reports always comes from the runtime the artifact will be deployed with.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.documents import Document
from edgepipe.errors import InputError, ShapeError
from edgepipe.json_types import JsonObject
from edgepipe.tensors import TensorSpec, format_shape

THREADS_ENV = "EDGEPIPE_THREADS"


def default_threads() -> int:
    """The runtime threads when none are given: ``$EDGEPIPE_THREADS`` when set (a whole
    number of at least 1, else ``bad-threads``), else the cores this process may use
    (cgroup/affinity aware where the OS says)."""
    given = os.environ.get(THREADS_ENV, "").strip()
    if given:
        if not given.isdecimal() or int(given) < 1:
            raise InputError(f"{THREADS_ENV}={given!r}: the default runtime threads must be "
                             "a whole number of at least 1.",
                             hint=f"set {THREADS_ENV} to e.g. 4, or unset it to use every "
                             "usable core.", reference="bad-threads")
        return int(given)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def run_batched(run: Callable[[list[np.ndarray]], list[np.ndarray]], arrays: list[np.ndarray],
                batch: int, *, pad: bool = True) -> list[np.ndarray]:
    """``run`` over ``arrays`` ``batch`` samples at a time, outputs concatenated.

    With ``pad``, a short last batch is filled by repeating its last sample (a model with a
    fixed batch takes exactly ``batch``) and the padding is dropped from the outputs.
    """
    count = len(arrays[0]) if arrays else 0
    if count == batch or (count < batch and not pad):
        return list(run(arrays))
    parts = []
    for start in range(0, count, batch):
        stop = min(start + batch, count)
        part = [a[start:stop] for a in arrays]
        short = batch - (stop - start)
        if short and pad:
            part = [np.concatenate([p, np.repeat(p[-1:], short, axis=0)]) for p in part]
        parts.append([out[: stop - start] for out in run(part)])
    return [np.concatenate([part[i] for part in parts]) for i in range(len(parts[0]))]


@dataclass
class RuntimeInfo(Document):
    """A runtime as it was set up to run an artifact: name, version, options (threads,
    precision hints) and the artifact's inputs and outputs."""

    runtime: str
    version: str
    options: dict[str, Any] = field(default_factory=dict)
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)


class Session(ABC):
    """A loaded artifact (or module) ready to run: inputs and outputs in a fixed order.

    ``name`` and ``version`` identify the runtime; ``options`` records the settings it
    runs with (threads, precision hints) so that a report can say exactly what ran.
    """

    name: str = "runtime"
    version: str = ""

    def __init__(self, path: Path | None, inputs: list[TensorSpec],
                 outputs: list[TensorSpec], options: JsonObject) -> None:
        self.path = path
        self.inputs = inputs
        self.outputs = outputs
        self.options = options

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Run on one array per input (in ``inputs`` order); return one array per output."""
        return self._run(self.prepare(arrays))

    @abstractmethod
    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Run on arrays already checked and cast by :meth:`prepare`."""

    def prepare(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Check count and shapes against ``inputs``; cast each array to the input's dtype.

        A cast is needed where a converter narrowed a dtype (LiteRT turns int64 into int32).
        """
        if len(arrays) != len(self.inputs):
            names = ", ".join(s.name for s in self.inputs)
            raise ShapeError(
                f"The {self.name} model takes {len(self.inputs)} input(s) ({names}); "
                f"{len(arrays)} were given.",
                hint="give one array per input, in the order listed.",
            )
        prepared = []
        for spec, array in zip(self.inputs, arrays, strict=True):
            array = np.asarray(array)
            fits = len(array.shape) == spec.rank and all(
                not isinstance(d, int) or d == n for d, n in zip(spec.shape, array.shape, strict=True)
            )
            if not fits:
                raise ShapeError(
                    f"Input {spec.name!r} of the {self.name} model has shape "
                    f"{format_shape(spec.shape)}; the array given has shape "
                    f"{format_shape(array.shape)}.",
                    hint="give arrays of the model's input shapes (dynamic dimensions may vary).",
                )
            prepared.append(np.ascontiguousarray(array, dtype=np.dtype(spec.dtype)))
        return prepared

    def describe(self) -> RuntimeInfo:
        """The runtime as it was set up, for manifests and reports."""
        return RuntimeInfo(self.name, self.version, dict(self.options), list(self.inputs),
                           list(self.outputs))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path or ''} {self.name} {self.version}>"
