"""The metric of a model or artifact, measured in its own runtime (see docs/architecture.md).

Labelled data gives top-1 accuracy on the model's classifier output; a reference (a MODEL,
another artifact, or outputs already computed) gives per-output SQNR (dB) and cosine
similarity against it. With labels and a reference, both are measured and top-1 is the
metric. An artifact with a fixed batch (most edge artifacts have batch 1) runs in chunks of
exactly that batch, the last chunk padded by repeating its last sample; a dynamic batch runs
in chunks of ``batch_size``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgepipe.data.preprocessing import Preprocessing
from edgepipe.errors import InputError, ShapeError
from edgepipe.export.validate import sqnr_db
from edgepipe.model.axes import nominal_inputs
from edgepipe.recorded import (
    normalize_for,
    recorded_preprocessing,
    recorded_source_inputs,
    recorded_tokenizer,
    renamed,
    source_named,
)
from edgepipe.runtime.base import run_batched
from edgepipe.tensors import TensorSpec, format_shape

if TYPE_CHECKING:
    import torch

    from edgepipe.data import Dataset
    from edgepipe.model import LoadedModel
    from edgepipe.runtime import Session

DEFAULT_BATCH = 64
log = logging.getLogger("edgepipe")


@dataclass
class OutputComparison:
    """One output against the reference's, over every sample evaluated."""

    name: str
    sqnr_db: float | None  # None when identical (infinite)
    cosine_mean: float  # per-sample cosine similarity of the flattened output, averaged
    cosine_min: float
    max_abs_diff: float
    top1_agreement: float | None  # for (N, classes) outputs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EvalSamples:
    """Which samples a metric was measured on: ``samples`` of the ``of`` in ``source``,
    the seeded eval split or all of them."""

    source: str
    split: str  # "eval" or "all"
    seed: int
    samples: int
    of: int
    # how the samples were prepared, and whence: "manifest.json" (the artifact's record),
    # "--normalize" (given), or "default" (the loader's, nothing recorded or given)
    preprocessing: Preprocessing | None = field(
        default=None, metadata={"omitted_when_none": True})
    preprocessing_from: str | None = field(default=None, metadata={"omitted_when_none": True})

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        for key in ("preprocessing", "preprocessing_from"):
            if document[key] is None:
                del document[key]
        return document

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> EvalSamples:
        values = dict(document)
        if values.get("preprocessing") is not None:
            values["preprocessing"] = Preprocessing.from_dict(values["preprocessing"])
        return cls(**values)


@dataclass
class EvalResult:
    """A measured metric: what, how much, on how many samples, in which runtime."""

    metric: str  # "top1" (fraction correct) or "sqnr_db" (worst output, vs the reference)
    value: float
    samples: int
    runtime: str
    runtime_version: str
    threads: int | None
    artifact: str
    batch: int
    seconds: float
    outputs: list[OutputComparison] = field(default_factory=list)
    reference: str | None = None
    classifier_output: str | None = None
    input_layout: dict[str, str] = field(default_factory=dict)  # per input: as-is / transposed
    host: dict[str, Any] = field(default_factory=dict)
    data: EvalSamples | None = field(  # set by evaluate_on_data
        default=None, metadata={"omitted_when_none": True})

    @property
    def display(self) -> str:
        """The value for people: ``98.3%`` or ``41.2 dB``."""
        if self.metric == "top1":
            return f"{100 * self.value:.2f}%"
        return "identical" if math.isinf(self.value) else f"{self.value:.1f} dB"

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        if math.isinf(self.value):  # identical outputs: JSON has no infinity
            document["value"] = None
            document["identical"] = True
        document["outputs"] = [o.to_dict() for o in self.outputs]
        data = document.pop("data")
        if data is not None:  # last, after the metric it qualifies
            document["data"] = data
        return document

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> EvalResult:
        values = {k: v for k, v in document.items() if k != "identical"}
        if document.get("identical"):
            values["value"] = math.inf
        values["outputs"] = [OutputComparison(**o) for o in document.get("outputs", [])]
        if document.get("data") is not None:
            values["data"] = EvalSamples.from_dict(document["data"])
        return cls(**values)


def evaluate_artifact(
    path: str | Path,
    dataset: Dataset,
    *,
    reference: Any = None,
    threads: int | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> EvalResult:
    """Measure an artifact (.onnx, .xml, .tflite, .pt2) in its runtime on ``dataset``.

    ``reference``: a MODEL spec or artifact path, a LoadedModel, a Session, or the reference
    outputs already computed on ``dataset`` (one array per output, all samples).
    """
    from edgepipe.runtime import open_artifact

    session = open_artifact(path, threads=threads)
    return evaluate_session(session, dataset, reference=reference, threads=threads,
                            batch_size=batch_size, name=Path(path).name)


PARTS = ("eval", "all")


def evaluate_on_data(
    artifact: str | Path,
    data: Any,
    *,
    reference: Any = None,
    part: str = "eval",
    seed: int = 0,
    threads: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    normalize: str | None = None,
    trust_pickle: bool = False,
    reference_weights: str | Path | None = None,
) -> EvalResult:
    """What ``edgepipe eval`` measures: ``artifact`` in its runtime on ``data`` (a DATA spec,
    a Dataset or arrays, see :func:`edgepipe.data.as_dataset`; of a Splits, its eval part).

    ``part`` "eval" takes the seeded held-out split (``seed``) that compress measures on,
    "all" every sample. The result's ``data`` says which samples it was measured on.

    An image source (a folder, ``builtin:digits``) is prepared as the artifact's record in
    the ``manifest.json`` beside it says (``preprocessing``), so the metric is the one
    compress measured; an explicit ``normalize`` that differs is used, with a warning.

    A ``reference`` MODEL spec is loaded with ``reference_weights`` (see
    :func:`load_reference`).
    """
    from edgepipe.data import Splits, as_dataset, check_labels_match, make_splits
    from edgepipe.runtime import open_artifact

    if batch_size < 1:
        raise InputError(f"--batch-size {batch_size} must be at least 1.",
                         hint="give a positive batch size.", reference="bad-batch")
    if part not in PARTS:
        raise InputError(f"Unknown part {part!r} of the data.",
                         hint="give eval (the seeded held-out split) or all (every sample).",
                         reference="bad-split-part")
    session = open_artifact(artifact, threads=threads, trust_pickle=trust_pickle)
    if reference_weights is not None and not isinstance(reference, (str, Path)):
        raise InputError(
            "--reference-weights was given without --reference." if reference is None else
            f"reference_weights was given with a {type(reference).__name__} as reference.",
            hint=REFERENCE_WEIGHTS_HINT, reference="conflicting-options")
    if isinstance(reference, (str, Path)):
        reference = load_reference(reference, Path(artifact), session.inputs,
                                   weights=reference_weights, trust_pickle=trust_pickle)
    outputs = session.outputs
    classes = (outputs[0].shape[-1] if len(outputs) == 1 and outputs[0].rank == 2
               and isinstance(outputs[0].shape[-1], int) else None)
    recorded = recorded_preprocessing(artifact)
    if isinstance(data, Splits):
        dataset = as_dataset(data.eval, session.inputs, num_classes=classes)
        samples, part = dataset, "eval"
    else:
        normalize = normalize_for(artifact, data, normalize, recorded)
        tokenizer = recorded_tokenizer(artifact, recorded)
        # texts are padded to the length the source was exported at (a dynamic sequence)
        nominal = nominal_inputs(artifact, session.inputs)
        specs, back = source_named(artifact, nominal) if tokenizer else (nominal, {})
        dataset = renamed(as_dataset(data, specs, num_classes=classes, normalize=normalize,
                                     tokenizer=tokenizer), back, session.inputs)
        samples = make_splits(dataset, seed=seed).eval if part == "eval" else dataset
    check_labels_match(recorded, dataset.class_names, Path(artifact).name)
    result = evaluate_session(session, samples, reference=reference, threads=threads,
                              batch_size=batch_size, name=str(artifact))
    used = dataset.preprocessing
    whence = None if used is None else "--normalize" if normalize is not None and (
        recorded is None or normalize != recorded.normalize) else (
        "manifest.json" if recorded is not None else "default")
    result.data = EvalSamples(source=dataset.source, split=part, seed=seed,
                              samples=len(samples), of=len(dataset), preprocessing=used,
                              preprocessing_from=whence)
    return result


def evaluate_module(
    module: torch.nn.Module,
    dataset: Dataset,
    *,
    inputs: list[Any] | None = None,
    reference: Any = None,
    batch_size: int = DEFAULT_BATCH,
    name: str = "torch module",
) -> EvalResult:
    """Measure a torch module (the float baseline) on ``dataset``; batches of ``batch_size``.

    ``inputs`` are the module's TensorSpecs (default: taken from the dataset, batch dynamic).
    """
    from edgepipe.runtime.torch_runtime import TorchSession
    from edgepipe.tensors import TensorSpec

    specs = inputs or [TensorSpec(n, ("batch", *a.shape[1:]), a.dtype.name)
                       for n, a in dataset.inputs.items()]
    specs = [s.with_shape(("batch", *s.shape[1:])) for s in specs]
    session = TorchSession(module, specs)
    return evaluate_session(session, dataset, reference=reference, batch_size=batch_size,
                            name=name)


def evaluate_session(
    session: Session,
    dataset: Dataset,
    *,
    reference: Any = None,
    threads: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    name: str = "",
) -> EvalResult:
    """The shared core: run ``session`` over ``dataset`` and score it."""
    if len(dataset) == 0:
        raise InputError(f"The data from '{dataset.source}' has no samples to evaluate.",
                         hint="give a dataset with at least one sample.", reference="data-empty")
    started = time.perf_counter()
    outputs, batch, layout = predict(session, dataset, batch_size)
    seconds = time.perf_counter() - started
    ref_outputs, ref_name = _reference_outputs(reference, dataset, threads, batch_size)
    return score(session, outputs, dataset, reference_outputs=ref_outputs,
                 reference_name=ref_name, batch=batch, layout=layout, seconds=seconds,
                 name=name)


def score(
    session: Session,
    outputs: list[np.ndarray],
    dataset: Dataset,
    *,
    reference_outputs: list[np.ndarray] | None = None,
    reference_name: str | None = None,
    batch: int = 1,
    layout: dict[str, str] | None = None,
    seconds: float = 0.0,
    name: str = "",
) -> EvalResult:
    """Score outputs that ``session`` gave on ``dataset`` (see :func:`predict`)."""
    from edgepipe.system import host_identity

    names = [s.name for s in session.outputs] or [f"output_{i}" for i in range(len(outputs))]
    comparisons = (_compare(names, outputs, reference_outputs)
                   if reference_outputs is not None else [])
    classifier = _classifier_index(outputs, dataset.num_classes)
    common = {"samples": len(dataset), "runtime": session.name,
              "runtime_version": session.version, "threads": _threads(session),
              "artifact": name or str(session.path or session.name), "batch": batch,
              "seconds": round(seconds, 3), "outputs": comparisons,
              "reference": reference_name, "input_layout": layout or {},
              "host": host_identity().to_dict()}
    if dataset.labels is not None and classifier is not None:
        predicted = np.argmax(outputs[classifier].reshape(len(dataset), -1), axis=1)
        top1 = float(np.mean(predicted == dataset.labels))
        return EvalResult("top1", top1, classifier_output=names[classifier], **common)
    if comparisons:
        worst = min(math.inf if c.sqnr_db is None else c.sqnr_db for c in comparisons)
        return EvalResult("sqnr_db", worst, **common)
    why = ("the data has no labels" if dataset.labels is None
           else "the model has no single (N, classes) output to take top-1 from")
    raise InputError(
        f"Nothing to measure: {why}, and no reference was given.",
        hint="give labelled data (y in the .npz, or class sub-folders) for top-1, or a "
        "reference (--reference MODEL or another artifact) for SQNR and cosine similarity.",
        reference="eval-needs-labels-or-reference",
    )


def predict(session: Session, dataset: Dataset,
            batch_size: int = DEFAULT_BATCH) -> tuple[list[np.ndarray], int, dict[str, str]]:
    """Run ``session`` on every sample; outputs concatenated along the first axis.

    Returns the outputs, the batch actually used, and how each input was laid out.
    """
    arrays, layout = _fit_inputs(session, list(dataset.inputs.values()))
    fixed = sorted({spec.shape[0] for spec in session.inputs
                    if spec.rank and isinstance(spec.shape[0], int)})
    if len(fixed) > 1:
        raise ShapeError(f"The inputs of '{session.path}' have different fixed batch sizes "
                         f"({', '.join(map(str, fixed))}).",
                         hint="export the model with one batch size for every input.",
                         reference="mixed-batch")
    batch = fixed[0] if fixed else batch_size
    # a fixed batch takes exactly `batch` samples: the short last one is padded
    return run_batched(session.run, arrays, batch, pad=bool(fixed)), batch, layout


def _fit_inputs(session: Session,
                arrays: list[np.ndarray]) -> tuple[list[np.ndarray], dict[str, str]]:
    """Match the data's arrays to the session's inputs, transposing NCHW <-> NHWC if needed."""
    if len(arrays) != len(session.inputs):
        raise ShapeError(
            f"The artifact takes {len(session.inputs)} input(s) "
            f"({', '.join(s.name for s in session.inputs)}); the data has {len(arrays)}.",
            hint="give one array per input (a multi-input .npz names them).",
            reference="data-inputs-mismatch")
    fitted, layout = [], {}
    for spec, array in zip(session.inputs, arrays, strict=True):
        if _fits(spec.shape, array.shape):
            fitted.append(array)
            layout[spec.name] = "as given"
        elif array.ndim == 4 and _fits(spec.shape, np.moveaxis(array, 1, -1).shape):
            fitted.append(np.ascontiguousarray(np.moveaxis(array, 1, -1)))
            layout[spec.name] = "NCHW data transposed to NHWC"
        elif array.ndim == 4 and _fits(spec.shape, np.moveaxis(array, -1, 1).shape):
            fitted.append(np.ascontiguousarray(np.moveaxis(array, -1, 1)))
            layout[spec.name] = "NHWC data transposed to NCHW"
        else:
            raise ShapeError(
                f"The data has samples of shape {format_shape(array.shape[1:])} for input "
                f"{spec.name!r}; the artifact takes {format_shape(spec.shape)}.",
                hint="give data shaped for this artifact (builtin:digits shapes itself to the "
                "input; an .npz must hold arrays of (N, *sample shape)).",
                reference="data-shape-mismatch")
    return fitted, layout


def _fits(shape: tuple[Any, ...], array_shape: tuple[int, ...]) -> bool:
    return len(shape) == len(array_shape) and all(
        not isinstance(d, int) or d == n for d, n in zip(shape[1:], array_shape[1:], strict=True))


REFERENCE_WEIGHTS_HINT = ("give --reference-weights with a MODEL spec as --reference (e.g. "
                          "--reference mymodel.py:build --reference-weights weights.pt).")


def load_reference(reference: str | Path, artifact: Path, artifact_inputs: list[TensorSpec],
                   *, weights: str | Path | None = None,
                   trust_pickle: bool = False) -> Path | LoadedModel:
    """``--reference``: an artifact file (returned as its path), or a MODEL spec loaded with
    ``weights``. A spec that cannot tell its input shapes (``FILE.py:factory``) takes those
    the artifact's manifest records for its source model, else the artifact's own."""
    from edgepipe.formats import by_suffix
    from edgepipe.model import load_model

    text = str(reference)
    is_artifact = by_suffix(Path(text).suffix) is not None and Path(text).is_file()
    if weights is not None and is_artifact:
        raise InputError(
            f"--reference-weights was given with the artifact '{text}', whose weights are in "
            "the file.", hint=REFERENCE_WEIGHTS_HINT, reference="conflicting-options")
    if is_artifact:
        return Path(text)
    try:
        return load_model(text, weights=weights, trust_pickle=trust_pickle)
    except ShapeError as exc:
        if exc.reference != "input-shape-needed":
            raise
    return load_model(text, weights=weights, trust_pickle=trust_pickle,
                      inputs=recorded_source_inputs(artifact) or artifact_inputs)


def _reference_outputs(reference: Any, dataset: Dataset, threads: int | None,
                       batch_size: int) -> tuple[list[np.ndarray] | None, str | None]:
    if reference is None:
        return None, None
    if isinstance(reference, (list, tuple)):
        return [np.asarray(a) for a in reference], "given outputs"
    from edgepipe.formats import by_suffix
    from edgepipe.runtime import Session, open_artifact

    if isinstance(reference, Session):
        return predict(reference, dataset, batch_size)[0], str(reference.path or reference.name)
    from edgepipe.model import LoadedModel, load_model

    if isinstance(reference, (str, Path)):
        text = str(reference)
        if by_suffix(Path(text).suffix) is not None and Path(text).is_file():
            session = open_artifact(text, threads=threads)
            return predict(session, dataset, batch_size)[0], text
        reference = load_model(text)
    assert isinstance(reference, LoadedModel)
    if reference.kind == "onnx":
        assert reference.onnx_path is not None
        session = open_artifact(reference.onnx_path, threads=threads)
        return predict(session, dataset, batch_size)[0], reference.spec
    from edgepipe.runtime.torch_runtime import TorchSession

    specs = [s.with_shape(("batch", *s.shape[1:])) for s in reference.inputs]
    session = TorchSession(reference.module, specs, threads=threads)
    return predict(session, dataset, batch_size)[0], reference.spec


def _compare(names: list[str], outputs: list[np.ndarray],
             reference: list[np.ndarray]) -> list[OutputComparison]:
    if len(outputs) != len(reference):
        raise ShapeError(f"The artifact gives {len(outputs)} output(s); the reference gives "
                         f"{len(reference)}.", hint="compare models with the same outputs.",
                         reference="reference-mismatch")
    results = []
    for name, out, ref in zip(names, outputs, reference, strict=True):
        if out.shape != ref.shape and out.ndim == 4 and np.moveaxis(out, -1, 1).shape == ref.shape:
            out = np.moveaxis(out, -1, 1)  # an NHWC output against an NCHW reference
        if out.size != ref.size:
            raise ShapeError(f"Output {name!r} has shape {format_shape(out.shape)}; the "
                             f"reference's has {format_shape(ref.shape)}.",
                             hint="compare models with the same outputs.",
                             reference="reference-mismatch")
        a = out.reshape(len(out), -1).astype(np.float64)
        b = ref.reshape(len(ref), -1).astype(np.float64)
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        cosine = np.where(norms > 0, np.sum(a * b, axis=1) / np.where(norms > 0, norms, 1), 1.0)
        sqnr = sqnr_db(b, a)
        agreement = None
        if ref.ndim == 2 and ref.shape[1] > 1:
            agreement = float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1)))
        results.append(OutputComparison(
            name, None if math.isinf(sqnr) else round(sqnr, 3), float(cosine.mean()),
            float(cosine.min()), float(np.max(np.abs(a - b))) if a.size else 0.0, agreement))
    return results


def compare_to(names: list[str], outputs: list[np.ndarray],
               reference: list[np.ndarray]) -> list[OutputComparison]:
    """Each output against the reference's: SQNR, cosine similarity, max |diff|."""
    return _compare(names, outputs, reference)


def classifier_output(outputs: list[np.ndarray], num_classes: int | None) -> int | None:
    """The index of the output top-1 is taken from (see :func:`_classifier_index`)."""
    return _classifier_index(outputs, num_classes)


def _classifier_index(outputs: list[np.ndarray], num_classes: int | None) -> int | None:
    """The one output shaped (N, classes), classes > 1 (and >= the data's classes)."""
    found = [i for i, o in enumerate(outputs) if o.ndim == 2 and o.shape[1] > 1
             and (num_classes is None or o.shape[1] >= num_classes)]
    return found[0] if len(found) == 1 else None


def _threads(session: Session) -> int | None:
    for key in ("intra_op_num_threads", "inference_num_threads", "num_threads"):
        if key in session.options:
            return int(session.options[key])
    return None


