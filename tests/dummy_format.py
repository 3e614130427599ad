"""A format that exists only for tests/test_registries.py: a Linear layer's weights in a
.npy file, run with numpy. It is the "one new module" of adding a format: an exporter
(``export(job) -> Exported``) and an opener (``open_session(path, threads, ...)``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.export.base import Exported, ExportJob
from edgepipe.runtime.base import Session
from edgepipe.tensors import TensorSpec


def export(job: ExportJob) -> Exported:
    """Write the source's single Linear layer as one (out, in + 1) array: weight | bias."""
    layer = job.source.module
    weight = layer.weight.detach().numpy()
    bias = layer.bias.detach().numpy()
    with job.path.open("wb") as handle:  # np.save on a path would add .npy
        np.save(handle, np.concatenate([weight, bias[:, None]], axis=1).astype(np.float32))
    return Exported(job.path, [job.path], "fp32", {"name": "dummy-numpy"})


class NumpySession(Session):
    name = "numpy-dummy"
    version = np.__version__

    def __init__(self, path: Path) -> None:
        with Path(path).open("rb") as handle:
            self.matrix = np.load(handle)
        outs, ins = self.matrix.shape[0], self.matrix.shape[1] - 1
        super().__init__(Path(path), [TensorSpec("x", ("batch", ins))],
                         [TensorSpec("output", ("batch", outs))], {})

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return [arrays[0] @ self.matrix[:, :-1].T + self.matrix[:, -1]]


def open_session(path: Path, threads: int | None = None, *, spin: bool = True,
                 trust_pickle: bool = False) -> Any:
    return NumpySession(path)
