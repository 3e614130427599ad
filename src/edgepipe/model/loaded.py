"""A loaded model (a torch module or an ONNX file) with its input specs, and the helpers
that run it."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from edgepipe.documents import Document
from edgepipe.errors import InputError, ShapeError, first_line
from edgepipe.model.onnx_specs import onnx_output_specs
from edgepipe.tensors import DynamicAxis, TensorSpec, format_shape

if TYPE_CHECKING:
    import torch

TRUST_FLAG = "--trust-pickle"
ModelKind = Literal["torch", "onnx"]

SPEC_HINT = (
    "give a path to a .onnx or .pt2 file, torchvision:NAME, builtin:digits-cnn, "
    "FILE.py:factory, package.module:factory or hf:FOLDER (a Hugging Face model folder)."
)

# An artifact stem (--name): one file name part, no folder, not hidden, not . or ..
_ARTIFACT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
ARTIFACT_NAME_MAX = 100


def check_artifact_name(name: str) -> str:
    """``name`` as the stem of artifact files (``NAME.onnx``, ``NAME.int8.tflite``), or an
    InputError: letters, digits, ``_ . + -``, not starting with ``.`` or ``-``, no folder."""
    text = str(name)
    if _ARTIFACT_NAME.fullmatch(text) and len(text) <= ARTIFACT_NAME_MAX:
        return text
    if "/" in text or "\\" in text:
        why = "has a path separator; it names files inside OUT, not a folder"
    elif not text:
        why = "is empty"
    elif len(text) > ARTIFACT_NAME_MAX:
        why = f"is longer than {ARTIFACT_NAME_MAX} characters"
    elif text[0] in ".-":
        why = f"starts with {text[0]!r}"
    else:
        bad = sorted({c for c in text if not re.fullmatch(r"[A-Za-z0-9_.+-]", c)})
        why = f"has characters a file name should not: {' '.join(map(repr, bad))}"
    raise InputError(
        f"The artifact name {text!r} {why}.",
        hint="give a plain file stem of letters, digits and _ . + - (e.g. --name mynet); "
        "the suffixes (.onnx, .int8.tflite) are added, and -o OUT says the folder.",
        reference="bad-artifact-name",
    )


@dataclass
class ModelSource(Document):
    """The model an artifact came from, as its manifest records it: the MODEL spec, its kind,
    weights, input specs, loading options and a hash that identifies it."""

    spec: str = ""
    kind: str = ""
    weights: str | None = None
    inputs: list[TensorSpec] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""


@dataclass
class LoadedModel:
    """A model ready to use: a torch module or an ONNX file, plus its input specs."""

    spec: str
    kind: ModelKind
    inputs: list[TensorSpec]
    module: torch.nn.Module | None = None
    onnx_path: Path | None = None
    weights: Path | None = None
    files: list[Path] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    # the folder whose tokenizer prepares text DATA for this model (an hf:FOLDER with one);
    # the verbs pass it to the data loaders (edgepipe.data.text)
    tokenizer_folder: Path | None = None
    # per integer input, the values it takes are 0..limit-1 (token ids below the vocabulary
    # size, an attention mask of 0 and 1): random samples keep inside them
    value_limits: dict[str, int] = field(default_factory=dict)
    # dimensions other than the batch that exports keep dynamic (a text encoder's sequence);
    # ``inputs`` hold each at its nominal size. Recorded in ``options`` as well, so that the
    # manifest beside an artifact says what its named dimensions mean.
    dynamic_axes: list[DynamicAxis] = field(default_factory=list)

    @property
    def name(self) -> str:
        """A short name for file names and reports (``resnet18``, ``model``)."""
        tail = re.split(r"[:/\\]", self.spec.rstrip("/\\"))[-1]
        stem = tail.rsplit(".", 1)[0] if "." in tail and not tail.startswith(".") else tail
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem) or "model"

    def sample_inputs(self, batch: int = 1, seed: int = 0) -> list[np.ndarray]:
        """Seeded random inputs, one array per input, dynamic batch filled by ``batch``."""
        return self.within_limits([spec.sample(batch, seed + i)
                                   for i, spec in enumerate(self.inputs)])

    def within_limits(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Random arrays (one per input, in order) with integer values folded into the
        input's ``value_limits`` (the others as they are)."""
        return [a % self.value_limits[s.name] if s.name in self.value_limits
                and a.dtype.kind in "iu" else a for s, a in zip(self.inputs, arrays, strict=True)]

    def source_sha256(self) -> str:
        """A hash that identifies the model: its files, or its spec, options and weights."""
        digest = hashlib.sha256()
        digest.update(json.dumps({"spec": self.spec, "options": self.options}, sort_keys=True,
                                 default=str).encode())
        for path in [*self.files, *([self.weights] if self.weights else [])]:
            digest.update(file_sha256(path).encode())
        return digest.hexdigest()

    def describe(self) -> ModelSource:
        """The model as it was loaded, for manifests and ``--json`` output."""
        return ModelSource(self.spec, self.kind, str(self.weights) if self.weights else None,
                           list(self.inputs), dict(self.options), self.source_sha256())


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def merge_inputs(
    graph: list[TensorSpec], given: list[TensorSpec] | None, *, source: str
) -> list[TensorSpec]:
    """Fill or override the graph's input specs with the user's, checking rank and count."""
    if not given:
        return graph
    if len(given) == 1 and len(graph) == 1:
        pairs = [(graph[0], given[0])]
    else:
        by_name = {g.name: g for g in given}
        unknown = sorted(set(by_name) - {g.name for g in graph})
        if unknown or len(given) != len(graph):
            raise ShapeError(
                f"The model has {len(graph)} input(s) "
                f"({', '.join(g.name for g in graph)}); the options name "
                f"{', '.join(g.name for g in given)}.",
                hint="give --input NAME:SHAPE:DTYPE once for each input, with the names above.",
            )
        pairs = [(g, by_name[g.name]) for g in graph]
    merged = []
    for graph_spec, user_spec in pairs:
        if graph_spec.rank != user_spec.rank:
            raise ShapeError(
                f"Input {graph_spec.name!r} has rank {graph_spec.rank} in {source} "
                f"({format_shape(graph_spec.shape)}); the shape given has rank "
                f"{user_spec.rank} ({format_shape(user_spec.shape)}).",
                hint=f"give a shape of {graph_spec.rank} dimensions, like "
                f"{format_shape([d if isinstance(d, int) else 1 for d in graph_spec.shape])}.",
            )
        for i, (g, u) in enumerate(zip(graph_spec.shape, user_spec.shape, strict=True)):
            if isinstance(g, int) and isinstance(u, int) and g != u:
                raise ShapeError(
                    f"Input {graph_spec.name!r} has dimension {i} fixed to {g} in {source}; "
                    f"the shape given says {u} ({format_shape(user_spec.shape)}).",
                    hint=f"use {format_shape(graph_spec.shape)}, or re-export the model with "
                    "that dimension dynamic.",
                )
        merged.append(TensorSpec(graph_spec.name, user_spec.shape, graph_spec.dtype))
    return merged


def check_forward(loaded: LoadedModel) -> None:
    """Run a torch model once on zeros of its input shapes; wrap a failure as an error."""
    import torch

    assert loaded.module is not None
    try:
        args = [torch.zeros(s.concrete_shape(1), dtype=getattr(torch, s.dtype))
                for s in loaded.inputs]
    except ShapeError:
        return  # a dynamic non-batch dimension: nothing concrete to try
    try:
        with torch.inference_mode():
            loaded.module(*args)
    except Exception as exc:
        shapes = ", ".join(format_shape(s.shape) for s in loaded.inputs)
        raise ShapeError(
            f"'{loaded.spec}' failed on an input of shape {shapes}: "
            f"{type(exc).__name__}: {first_line(exc)}",
            hint="check --input-shape (rank, channels, spatial size) against what the model "
            "takes; --debug shows the model's traceback.",
            reference="forward-failed",
        ) from exc


def run_torch(module: torch.nn.Module, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Run a torch module on numpy inputs; return its outputs as numpy arrays (flattened)."""
    import torch

    with torch.inference_mode():
        out = module(*[torch.from_numpy(np.ascontiguousarray(a)) for a in arrays])
    return [t.detach().cpu().numpy() for t in flatten_outputs(out)]


def flatten_outputs(out: Any) -> list[Any]:
    """Tensors of a model output (a tensor, tuple/list, or dict of them) in a fixed order."""
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in flatten_outputs(item)]
    if isinstance(out, dict):
        return [t for key in out for t in flatten_outputs(out[key])]
    if hasattr(out, "logits") and not hasattr(out, "shape"):
        return flatten_outputs(out.logits)
    return [out]


def classifier_classes(loaded: LoadedModel) -> int | None:
    """The class count of a classifier: the last dimension of its single 2-D output (one
    forward pass of a torch model on a sample, or the ONNX graph's output), else None.

    Data whose labels reach this count cannot be scored or trained on; callers check the
    labels with it before any work starts."""
    shapes: list[tuple[Any, ...]] = []
    try:
        if loaded.module is not None:
            module = loaded.module
            shapes = [a.shape for a in run_torch(module, loaded.sample_inputs(1))]
        elif loaded.onnx_path is not None:
            import onnx

            proto = onnx.load(str(loaded.onnx_path), load_external_data=False)
            shapes = [s.shape for s in onnx_output_specs(proto)]
    except Exception:  # no sample (dynamic dims) or a model that needs other inputs
        return None
    if len(shapes) == 1 and len(shapes[0]) == 2 and isinstance(shapes[0][-1], int):
        return int(shapes[0][-1])
    return None
