"""The shape every compression backend shares: a :class:`CompressJob` in, a
:class:`Compressed` out.

A backend module (``int8/ort.py``, ``int8/openvino.py``, ``lowbit/brevitas.py``, ...) has
one function ``compress(job) -> Compressed``. It writes the compressed artifact under ``job.path`` in the
staging folder the api hands it (the converters and quantizers of these runtimes work file
to file); checking, measuring, publishing and recording it is :mod:`edgepipe.compress.api`'s
work, the same for every backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.compress.config_base import CompressConfig
from edgepipe.data import Splits
from edgepipe.errors import UnsupportedError
from edgepipe.model import LoadedModel


@dataclass
class CompressJob:
    """What a backend gets.

    ``float_path`` is the float artifact of ``fmt``, already exported and parity-checked;
    ``path`` is where the compressed artifact goes (in staging). ``calibration`` holds one
    array per model input (all calibration samples along the first axis), or None for
    methods without calibration. ``data`` is the whole split (train / calib / eval), for the
    backends that train (quantization-aware training reads ``data.train`` only).
    ``checkpoints`` is the folder in OUT where those backends keep the trained model, so a
    failure after training loses nothing (see :mod:`edgepipe.compress.checkpoint`).
    """

    source: LoadedModel
    config: CompressConfig
    fmt: str
    float_path: Path
    path: Path
    calibration: list[np.ndarray] | None = None
    threads: int | None = None
    data: Splits | None = None
    checkpoints: Path | None = None  # where trained models are kept (OUT/.checkpoints)


@dataclass
class Compressed:
    """What a backend wrote: the main file, every file, its precision and how it was made.

    ``left_in_float`` lists the layers the backend did not compress, each with its op type
    and the reason (a layer the quantizer cannot handle stays float; it is not an error).
    """

    path: Path
    files: list[Path]
    precision: str
    tool: dict[str, Any]
    left_in_float: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def torch_module(job: CompressJob, does: str, alternative: str = "") -> Any:
    """The job's torch module, for the methods that rewrite its layers (``does``: what the
    method does to it); a model given as an ONNX file is an UnsupportedError."""
    if job.source.module is None:
        raise UnsupportedError(
            f"--method {job.config.method} {does} a torch model; {job.source.spec} is "
            f"{job.source.kind}.",
            hint="give the torch model (package.module:factory, torchvision:NAME, builtin:...) "
            f"rather than its ONNX export{alternative}.", reference="method-needs-torch")
    return job.source.module
