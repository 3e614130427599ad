"""Tensor specifications: names, shapes (with dynamic dimensions) and dtypes.

``TensorSpec`` is how every part of edgepipe describes a model input or output, in the
manifest, in ``inspect`` and when making sample inputs. Shapes are tuples whose items are
ints, or strings for dynamic dimensions (``"batch"``, ``"seq"``); ``-1`` on the command
line becomes a named dynamic dimension.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgepipe.errors import InputError, ShapeError

Dim = int | str

_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "float64": "float64",
    "double": "float64",
    "int64": "int64",
    "long": "int64",
    "int32": "int32",
    "int": "int32",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
}


MAX_INPUT_ENV = "EDGEPIPE_MAX_INPUT_MIB"
DEFAULT_MAX_INPUT_MIB = 512


def max_input_bytes() -> int:
    """The largest single-sample input tensor edgepipe makes (512 MiB unless
    ``EDGEPIPE_MAX_INPUT_MIB`` says otherwise): a mistyped shape is an error, not an
    allocation of tens of gigabytes."""
    text = os.environ.get(MAX_INPUT_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_INPUT_MIB << 20
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value != value or value > 1 << 40:
        raise InputError(f"{MAX_INPUT_ENV}={text!r} is not a size in MiB.",
                         hint=f"set it to a positive number of MiB, e.g. {MAX_INPUT_ENV}=2048.",
                         reference="bad-input-limit")
    return int(value * (1 << 20))


def check_input_size(shape: tuple[Dim, ...], dtype: str = "float32", name: str = "input") -> None:
    """Refuse a tensor whose static dimensions alone exceed :func:`max_input_bytes`."""
    elements = 1
    for d in shape:
        if isinstance(d, int):
            elements *= d
    size = elements * np.dtype(dtype).itemsize
    limit = max_input_bytes()
    if size > limit:
        raise ShapeError(
            f"The {name} of shape {format_shape(shape)} ({dtype}) would take "
            f"{size / (1 << 20):,.0f} MiB for one sample, over the limit of "
            f"{limit / (1 << 20):,.0f} MiB.",
            hint=f"check the shape; if it is right, raise the limit with {MAX_INPUT_ENV}="
            f"{-(-size // (1 << 20))}.", reference="input-too-large")


def normalize_dtype(text: str) -> str:
    """A numpy dtype name for ``text`` (``fp32`` -> ``float32``), or an InputError."""
    key = str(text).strip().lower().removeprefix("torch.")
    if key not in _DTYPES:
        raise InputError(
            f"Unknown dtype {text!r}.",
            hint=f"use one of: {', '.join(sorted(set(_DTYPES.values())))}.",
            reference="bad-dtype",
        )
    return _DTYPES[key]


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: its name, shape and dtype (a numpy dtype name)."""

    name: str
    shape: tuple[Dim, ...]
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    def concrete_shape(self, batch: int = 1) -> tuple[int, ...]:
        """The shape with dynamic dimensions filled: the first one by ``batch``.

        A dynamic dimension other than the first cannot be guessed; it raises a
        ShapeError asking for an explicit shape.
        """
        dims: list[int] = []
        for i, d in enumerate(self.shape):
            if isinstance(d, int):
                dims.append(d)
            elif i == 0:
                dims.append(batch)
            else:
                raise ShapeError(
                    f"Input {self.name!r} has a dynamic dimension {d!r} at position {i} "
                    f"(shape {format_shape(self.shape)}).",
                    hint=f"give a concrete shape, e.g. --input {self.name}:"
                    f"{'x'.join(str(x if isinstance(x, int) else 1) for x in self.shape)}:"
                    f"{self.dtype}.",
                )
        return tuple(dims)

    def bytes(self, batch: int = 1) -> int:
        """Size in bytes of one tensor of this spec (dynamic batch filled by ``batch``)."""
        return int(np.prod(self.concrete_shape(batch), dtype=np.int64)) * np.dtype(
            self.dtype
        ).itemsize

    def sample(self, batch: int = 1, seed: int = 0) -> np.ndarray:
        """A seeded random tensor of this spec: N(0, 1) for floats, small ints otherwise."""
        rng = np.random.default_rng(seed)
        shape = self.concrete_shape(batch)
        check_input_size(self.concrete_shape(1), self.dtype, f"input {self.name!r}")
        dtype = np.dtype(self.dtype)
        if dtype.kind == "f":
            return rng.standard_normal(shape).astype(dtype)
        if dtype.kind == "b":
            return rng.integers(0, 2, shape).astype(dtype)
        return rng.integers(0, 100, shape).astype(dtype)

    def with_shape(self, shape: tuple[Dim, ...]) -> TensorSpec:
        return TensorSpec(self.name, tuple(shape), self.dtype)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        return cls(str(data["name"]), tuple(data["shape"]), normalize_dtype(data["dtype"]))


@dataclass(frozen=True)
class DynamicAxis:
    """A dimension other than the batch that an artifact keeps dynamic: the sequence axis of a
    text encoder's token inputs. ``inputs`` name the inputs that carry it at ``axis``;
    ``size`` is the length every sample edgepipe makes has (calibration, parity, profiling:
    the source's input specs hold it), ``max`` the longest the artifact takes."""

    name: str
    axis: int
    inputs: tuple[str, ...]
    size: int
    max: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "axis": self.axis, "inputs": list(self.inputs),
                "size": self.size, "max": self.max}

    @classmethod
    def from_dict(cls, data: Any) -> DynamicAxis | None:
        """The axis a manifest records, or None where it holds something else (a
        hand-edited manifest may hold anything)."""
        if not isinstance(data, dict):
            return None
        name, axis, size, top = (data.get(k) for k in ("name", "axis", "size", "max"))
        inputs = data.get("inputs")
        whole = all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                    for v in (axis, size, top))
        if not (isinstance(name, str) and name and whole and isinstance(inputs, list)
                and all(isinstance(i, str) for i in inputs) and size <= top):
            return None
        return cls(name, axis, tuple(inputs), size, top)


def sized(specs: list[TensorSpec], axes: list[DynamicAxis]) -> list[TensorSpec]:
    """``specs`` with each of ``axes`` filled by its ``size`` where the spec is one of the
    axis's inputs and that dimension is dynamic (an artifact's ``1 x sequence`` inputs become
    ``1 x 128``, what its samples are made with); every other dimension as it is."""
    filled = []
    for spec in specs:
        shape = list(spec.shape)
        for axis in axes:
            if spec.name in axis.inputs and axis.axis < len(shape) and \
                    not isinstance(shape[axis.axis], int):
                shape[axis.axis] = axis.size
        filled.append(spec.with_shape(tuple(shape)))
    return filled


def format_shape(shape: tuple[Dim, ...] | list[Dim]) -> str:
    """``(1, 3, 224, 224)`` -> ``1x3x224x224``."""
    return "x".join(str(d) for d in shape) if len(shape) else "scalar"


_DIM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_shape(text: str, *, allow_dynamic: bool = False) -> tuple[Dim, ...]:
    """Parse ``1x3x224x224`` (also ``1,3,224,224``) into a shape tuple.

    With ``allow_dynamic``, ``-1`` or a name (``batch``) marks a dynamic dimension;
    ``-1`` becomes ``dim{i}``.
    """
    raw = str(text).strip().lower().replace(",", "x").replace("*", "x")
    example = "1x3x224x224"
    if not raw:
        raise ShapeError("The input shape is empty.", hint=f"write it like {example}.")
    dims: list[Dim] = []
    for i, part in enumerate(raw.split("x")):
        part = part.strip()
        if re.fullmatch(r"-?\d+", part):
            value = int(part)
            if value > 0:
                dims.append(value)
                continue
            if value == -1 and allow_dynamic:
                dims.append(f"dim{i}")
                continue
        elif allow_dynamic and _DIM_NAME.match(part):
            dims.append(part)
            continue
        raise ShapeError(
            f"Cannot read the shape {text!r}: dimension {i} is {part!r}.",
            hint=f"write positive integers joined by 'x', like {example}"
            + (" (-1 or a name for a dynamic dimension)." if allow_dynamic else "."),
        )
    check_input_size(tuple(dims), name="input")
    return tuple(dims)


def parse_input_option(text: str) -> TensorSpec:
    """Parse ``--input NAME:SHAPE[:DTYPE]`` (e.g. ``input_ids:1x128:int64``)."""
    parts = str(text).split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise InputError(
            f"Cannot read --input {text!r}.",
            hint="write NAME:SHAPE:DTYPE, e.g. --input input_ids:1x128:int64 "
            "(-1 or a name for a dynamic dimension).",
            reference="bad-input-option",
        )
    dtype = normalize_dtype(parts[2]) if len(parts) == 3 else "float32"
    shape = parse_shape(parts[1], allow_dynamic=True)
    check_input_size(shape, dtype, f"input {parts[0]!r}")
    return TensorSpec(parts[0], shape, dtype)
