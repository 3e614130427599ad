"""A backend-neutral graph of a model: ordered op nodes over named activation tensors.

Torch (FX or torch.export) and ONNX graphs are both turned into a :class:`Graph`, so the
numbers ``inspect`` prints (parameters, MACs, activation sizes, peak activation memory)
are computed once, the same way for every backend.

Only activations are tensors of the graph. Weights (parameters, buffers, initializers,
constants) live in flash on an edge device; they are counted as an op's ``params`` and
never appear in ``inputs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class TensorInfo:
    """One activation tensor: its name, static shape and dtype (a numpy dtype name)."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def nbytes(self) -> int:
        """Bytes of a dense tensor of this shape and dtype."""
        return int(np.prod(self.shape, dtype=np.int64)) * dtype_size(self.dtype)


@dataclass
class OpNode:
    """One operation, in execution order.

    ``aliases`` maps an output to the input whose storage it shares: a view (reshape,
    flatten, squeeze...) or an in-place op writes no new buffer, it extends the life of
    the buffer it aliases.
    """

    name: str
    op_type: str
    inputs: list[str]
    outputs: list[str]
    params: int = 0
    macs: int = 0
    aliases: dict[str, str] = field(default_factory=dict)

    @property
    def allocates(self) -> bool:
        """Whether the op writes at least one new buffer."""
        return any(out not in self.aliases for out in self.outputs)


@dataclass
class Graph:
    """Ops in execution order, the activation tensors they read and write, graph I/O."""

    nodes: list[OpNode]
    tensors: dict[str, TensorInfo]
    inputs: list[str]
    outputs: list[str]
    method: str
    notes: list[str] = field(default_factory=list)

    def nbytes(self, name: str) -> int:
        """Bytes of a tensor; 0 for a name whose shape is unknown."""
        info = self.tensors.get(name)
        return info.nbytes if info is not None else 0


_DTYPE_SIZES = {"bool": 1, "bfloat16": 2, "float8_e4m3fn": 1, "float8_e5m2": 1,
                "complex64": 8, "complex128": 16}


def dtype_size(dtype: str) -> int:
    """Bytes per element of a dtype named the numpy way (``float32``) or the torch way."""
    name = str(dtype).removeprefix("torch.")
    if name in _DTYPE_SIZES:
        return _DTYPE_SIZES[name]
    try:
        return np.dtype(name).itemsize
    except TypeError:
        return 4  # an exotic dtype numpy does not know: assume a 32-bit element


def numel(shape: tuple[int, ...] | list[int]) -> int:
    """Number of elements of a shape (1 for a scalar)."""
    return int(np.prod(shape, dtype=np.int64))
