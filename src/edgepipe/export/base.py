"""The shape every format's exporter shares, and helpers they all use.

A format module has one function ``export(job) -> Exported``: it writes the artifact's
files under ``job.path`` (in a staging folder) and says what it wrote. Checking the
artifact and recording it is :mod:`edgepipe.export.api`'s work, the same for every format.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.errors import EdgepipeError, UnsupportedError, backend_missing, first_line
from edgepipe.export.config import ExportConfig
from edgepipe.model import LoadedModel

log = logging.getLogger("edgepipe")


@dataclass
class ExportJob:
    """What a format's exporter gets: the model, where to write, the options, and samples.

    ``sample`` is one model batch of inputs, the example converters trace with;
    ``parity_inputs`` every input parity runs on (``sample`` and more, from --data), fed
    in model-batch chunks; ``reference`` the source model's outputs on ``parity_inputs``;
    ``output_names`` the names outputs get in the artifact.
    """

    source: LoadedModel
    path: Path
    config: ExportConfig
    sample: list[np.ndarray]
    reference: list[np.ndarray]
    output_names: list[str]
    parity_inputs: list[np.ndarray] = field(default_factory=list)
    # parity at a second size of each dynamic axis (edgepipe.export.api.LengthCheck)
    length_checks: list[Any] = field(default_factory=list)

    @property
    def chunk(self) -> int:
        """How many samples the artifact takes per run: its static batch, else all."""
        return chunk_size(self.source, self.parity_inputs or self.sample)

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self.source.inputs]

    @property
    def dynamic_batch(self) -> bool:
        """Asked for, or already dynamic in the source's first input dimension."""
        return self.config.dynamic_batch or any(
            spec.rank and not isinstance(spec.shape[0], int) for spec in self.source.inputs)

    def torch_dynamic_shapes(self, *, batch: bool = True) -> Any:
        """``dynamic_shapes`` for torch.export: the batch axis when dynamic (and ``batch``),
        and each of the source's :attr:`~edgepipe.model.LoadedModel.dynamic_axes` (one
        ``Dim`` shared by every input that carries it, from 1 to its ``max``), nested like
        forward's signature (a ``forward(*tensors)`` takes one tuple). None when nothing is
        dynamic."""
        import inspect

        import torch

        axes: list[dict[int, Any]] = [{} for _ in self.sample]
        if batch and self.dynamic_batch:
            dim = torch.export.Dim("batch")
            for per_input in axes:
                per_input[0] = dim
        names = self.input_names
        for axis in self.source.dynamic_axes:
            dim = torch.export.Dim(axis.name, min=1, max=axis.max)
            for name in axis.inputs:
                if name in names:
                    axes[names.index(name)][axis.axis] = dim
        if not any(axes):
            return None
        module = self.source.module
        parameters = list(inspect.signature(module.forward).parameters.values()) \
            if module is not None else []
        if parameters and parameters[0].kind is inspect.Parameter.VAR_POSITIONAL:
            return (tuple(axes),)
        return tuple(axes)

    def dynamic_axis_names(self, *, batch: bool = True) -> dict[str, dict[int, str]]:
        """Input name -> {axis: dimension name} for the exporters that take names (the
        TorchScript ONNX exporter): what :meth:`torch_dynamic_shapes` makes dynamic."""
        names: dict[str, dict[int, str]] = {}
        for name in self.input_names:
            if batch and self.dynamic_batch:
                names.setdefault(name, {})[0] = "batch"
        for axis in self.source.dynamic_axes:
            for name in axis.inputs:
                if name in self.input_names:
                    names.setdefault(name, {})[axis.axis] = axis.name
        return names

    def torch_args(self) -> tuple[Any, ...]:
        import torch

        return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in self.sample)


def chunk_size(source: LoadedModel, arrays: list[np.ndarray]) -> int:
    """The source's static batch (first dim of its first input), else every sample at once."""
    first = source.inputs[0].shape[0] if source.inputs and source.inputs[0].rank else None
    return first if isinstance(first, int) else max(1, len(arrays[0]) if arrays else 1)


@dataclass
class Exported:
    """What an exporter wrote: the main file, every file, and how it was made.

    ``channel_last_inputs`` / ``channel_last_outputs`` list the tensors (by position) that
    the artifact takes or gives channel-last, so parity can transpose around them.
    """

    path: Path
    files: list[Path]
    precision: str
    tool: dict[str, Any]
    channel_last_inputs: list[int] = field(default_factory=list)
    channel_last_outputs: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def layout_name(rank: int, channel_last: bool) -> str:
    """``NCHW`` / ``NHWC`` for 4-D tensors, ``NC`` for 2-D, ``NCW``/``NWC``, ``NCDHW``..."""
    spatial = {3: "W", 4: "HW", 5: "DHW"}.get(rank)
    if rank == 2:
        return "NC"
    if spatial is None:
        return f"{rank}-D"
    return f"N{spatial}C" if channel_last else f"NC{spatial}"


def to_channel_last(array: np.ndarray) -> np.ndarray:
    """(N, C, ...) -> (N, ..., C)."""
    return np.ascontiguousarray(np.moveaxis(array, 1, -1))


def to_channel_first(array: np.ndarray) -> np.ndarray:
    """(N, ..., C) -> (N, C, ...)."""
    return np.ascontiguousarray(np.moveaxis(array, -1, 1))


@contextlib.contextmanager
def quiet_tool(tool: str) -> Iterator[None]:
    """Keep a converter's progress prints off stdout (``--json`` owns it), its Python
    warnings off stderr, and what it prints to stderr from this thread (torch.export prints
    the partial graph of a model it refuses; the refusal reaches the user as the error); all
    are logged at debug level (``--debug`` shows them). Other threads (a live progress
    display) still write to stderr."""
    buffer, printed = io.StringIO(), _ThreadStderr(threading.get_ident(), sys.stderr)
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(printed), \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        text = buffer.getvalue().strip()
        if text:
            log.debug("%s said:\n%s", tool, text)
        if printed.text.strip():
            log.debug("%s printed to stderr:\n%s", tool, printed.text.strip())
        for warning in caught:
            log.debug("%s warned: %s", tool, warning.message)


class _ThreadStderr(io.TextIOBase):
    """sys.stderr for one thread's writes kept as text, the others' passed through."""

    def __init__(self, thread: int, stream: Any) -> None:
        self.thread, self.stream, self.text = thread, stream, ""

    def write(self, text: str) -> int:
        if threading.get_ident() == self.thread:
            self.text += text
        else:
            self.stream.write(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return bool(self.stream.isatty())

    def fileno(self) -> int:
        return int(self.stream.fileno())


_OP_PATTERNS = (
    re.compile(r"aten[.:]{1,2}[A-Za-z_][\w.]*"),
    re.compile(r"torchvision[.:]{1,2}\w+"),
    re.compile(r"operator\s+'?([A-Za-z_][\w.:]*)"),
)


def require_torch_source(source: LoadedModel, label: str, why: str, *, reference: str) -> None:
    """Refuse an ONNX source for a format whose converter takes torch programs only."""
    if source.kind != "torch" or source.module is None:
        raise UnsupportedError(
            f"{label} export from an ONNX model is not available: {why}",
            hint=f"give the torch model as MODEL (torchvision:NAME, package.module:factory or "
            f"a .pt2 file) to export {label}; ONNX and OpenVINO export work from the .onnx "
            "file.", reference=reference)


def conversion_failed(message: str, exc: Exception, *, hint: str, reference: str,
                      errors_text: str | None = None) -> EdgepipeError:
    """The error for a converter that refused the model: ``message`` and the exception's
    first line, the operators its text names (in the hint and details), then ``hint``. A
    converter whose optional backend is missing is backend-missing instead."""
    missing = backend_missing(exc, message.split(" could not", 1)[0])
    if missing is not None:
        return missing
    ops = operator_names(errors_text if errors_text is not None else str(exc))
    return UnsupportedError(
        f"{message}: {type(exc).__name__}: {first_line(exc)}",
        hint=(f"operators named in the error: {', '.join(ops)}. " if ops else "") + hint,
        reference=reference, details={"operators": ops})


def operator_names(text: str) -> list[str]:
    """Operator names mentioned in a converter's error message (``aten::foo``, ...)."""
    names: list[str] = []
    for pattern in _OP_PATTERNS:
        for match in pattern.finditer(text):
            name = match.group(1) if pattern.groups else match.group(0)
            if name not in names:
                names.append(name)
    return names


