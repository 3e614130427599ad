"""torch as a runtime: an ``nn.Module`` (the reference) or a ``.pt2`` ExportedProgram."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.runtime.base import Session, default_threads
from edgepipe.tensors import TensorSpec


class TorchSession(Session):
    """A torch module run on numpy arrays; outputs flattened as ``model.run_torch`` does."""

    name = "torch"

    def __init__(self, module: Any, inputs: list[TensorSpec], path: Path | None = None,
                 threads: int | None = None) -> None:
        import torch

        from edgepipe.model import run_torch

        self.version = torch.__version__.split("+")[0]
        self._module = module
        self._run_torch = run_torch
        # torch's threads are the process's: set them as the other runtimes set their own
        # (the given count, else $EDGEPIPE_THREADS or every usable core)
        torch.set_num_threads(threads or default_threads())
        outputs = [TensorSpec(f"output_{i}" if i else "output", tuple(a.shape), a.dtype.name)
                   for i, a in enumerate(self._probe(inputs))]
        super().__init__(path, inputs, outputs, {"num_threads": torch.get_num_threads()})

    def _probe(self, inputs: list[TensorSpec]) -> list[np.ndarray]:
        # zeros, not random values: an integer input (token ids, a mask) is an index whose
        # valid range the specs do not say, and only the output shapes are wanted here
        try:
            arrays = [np.zeros(s.concrete_shape(1), dtype=s.dtype) for s in inputs]
        except Exception:
            return []
        return self._run_torch(self._module, arrays)

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return self._run_torch(self._module, arrays)


def open_pt2(path: Path, threads: int | None = None, *,
             trust_pickle: bool = False) -> TorchSession:
    """A ``.pt2`` ExportedProgram as a session; loaded by ``load_model``, so through the same
    pickle guard as a .pt2 MODEL (refused unless ``trust_pickle``)."""
    from edgepipe.model import load_model

    loaded = load_model(str(path), check=False, trust_pickle=trust_pickle)
    return TorchSession(loaded.module, loaded.inputs, path=Path(path), threads=threads)


def open_session(path: Path, threads: int | None = None, *, spin: bool = True,
                 trust_pickle: bool = False) -> TorchSession:
    """The opener :mod:`edgepipe.formats` names for .pt2 files."""
    return open_pt2(path, threads, trust_pickle=trust_pickle)
