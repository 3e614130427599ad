"""The verbs of the command line as Python functions (re-exported by ``import edgepipe``).

Where a verb takes a MODEL it accepts a spec string (``"builtin:digits-cnn"``,
``"model.onnx"``), a :class:`~edgepipe.model.LoadedModel` from :func:`load_model`, or an
in-memory ``torch.nn.Module`` with ``example_inputs`` (see :func:`edgepipe.model.as_loaded`).
Where it takes DATA it accepts a spec string (``"builtin:digits"``, ``"data.npz"``, an image
folder), a :class:`~edgepipe.data.Dataset` or :class:`~edgepipe.data.Splits`, or arrays:
``x`` or ``(x, y)`` (see :func:`edgepipe.data.as_dataset`). Each verb runs the code its
command runs and returns a typed result; expected failures raise
:class:`~edgepipe.errors.EdgepipeError` subclasses, as the command prints them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepipe.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from edgepipe.compress.config import CompressConfig
    from edgepipe.compress.results import CompressResult
    from edgepipe.data import Splits
    from edgepipe.evaluate import EvalResult
    from edgepipe.export.api import ExportResult
    from edgepipe.export.config import ExportConfig
    from edgepipe.profiling.profile import Profile
    from edgepipe.split.api import SplitConfig, SplitResult


def export(model: Any, out: str | Path, config: ExportConfig | None = None, *,
           example_inputs: Any = None, parity_inputs: list[np.ndarray] | None = None,
           data: Any = None, samples: int = 64, normalize: str | None = None,
           **options: Any) -> ExportResult:
    """Export ``model`` to each format under ``out``, each artifact parity-checked in its
    runtime (``edgepipe export``). ``options`` build the :class:`ExportConfig` when none is
    given (``formats=("onnx", "tflite")``, ``dynamic_batch=True``, ``atol=1e-3``, ...).
    Parity runs on ``parity_inputs``, else on ``samples`` of the eval split of ``data``,
    else on seeded random inputs."""
    from edgepipe.export.api import export_model
    from edgepipe.export.config import ExportConfig

    config = _config(ExportConfig, config, options)
    loaded = as_loaded_model(model, example_inputs)
    return export_model(loaded, out, config, inputs=parity_inputs, data=data,
                        samples=samples, normalize=normalize)


def compress(model: Any, config: CompressConfig | str, out: str | Path, data: Any = None, *,
             example_inputs: Any = None, threads: int | None = None,
             max_drop: float | None = None, sensitivity: bool = False,
             normalize: str | None = None, **options: Any) -> CompressResult:
    """Compress ``model`` with ``config`` for each of its formats under ``out``
    (``edgepipe compress``). ``config`` is a CompressConfig or a method name (``"int8"``,
    ``"fp16"``, ``"w4a8"``, ...) whose options are the keyword ``options``
    (``formats=("onnx",)``, ``calibration="entropy"``, ``seed=0``, ...). ``data`` is split
    with the config's seed as the command splits ``--data``: calibration from the train
    part, the metric on the held-out eval part. ``max_drop`` / ``sensitivity``: the
    accuracy budget of ``--max-drop`` / ``--sensitivity``."""
    from edgepipe.compress.api import compress as compress_model
    from edgepipe.compress.budget import AccuracyBudget
    from edgepipe.compress.config import make_config

    config = (make_config(config, **options) if isinstance(config, str)
              else _config(type(config), config, options))
    budget = AccuracyBudget(max_drop, sensitivity)
    return compress_model(as_loaded_model(model, example_inputs), config, out, data,
                          threads=threads, budget=budget, normalize=normalize)


def evaluate(artifact: Any, data: Any, *, reference: Any = None,
             reference_weights: str | Path | None = None, part: str = "eval",
             seed: int = 0, threads: int | None = None, batch_size: int = 64,
             normalize: str | None = None, trust_pickle: bool = False) -> EvalResult:
    """The metric of an artifact in its own runtime (``edgepipe eval``): top-1 with labelled
    data, SQNR and cosine similarity against ``reference`` (a MODEL spec, with
    ``reference_weights`` its state dict, or an artifact). ``artifact``: a path, or an
    ExportResult / CompressResult holding one artifact. ``part`` "eval" (the held-out split
    of ``seed`` that compress measures on) or "all" (``eval --subset``)."""
    from edgepipe.evaluate import evaluate_on_data

    return evaluate_on_data(artifact_path(artifact), data, reference=reference, part=part,
                            seed=seed, threads=threads, batch_size=batch_size,
                            normalize=normalize, trust_pickle=trust_pickle,
                            reference_weights=reference_weights)


def profile(artifact: Any, target: str = "host", *, runs: int = 100, duration: float = 3.0,
            warmup: int = 10, threads: int | None = None,
            cpus: str | Sequence[int] | None = None, batch: int = 1,
            precision: str = "fp32", data: str | None = None, normalize: str | None = None,
            seed: int = 0, per_layer: bool = True, energy: bool = True,
            energy_window: float = 3.0, host: str | None = None,
            benchmark_model: str | Path | None = None, identity: str | Path | None = None,
            ssh_config: str | Path | None = None, remote_python: str = "python3",
            trust_pickle: bool = False, sequence_length: int | None = None) -> Profile:
    """Latency, memory and energy of an artifact on ``target`` (``edgepipe profile``, the
    same options): measured here for ``host``, on the device behind ``host="ssh://..."``
    or ``"adb://..."``, else estimated and labelled so. ``artifact``: a path, or an
    ExportResult / CompressResult holding one artifact."""
    from edgepipe.profiling.profile import check_cpus_option, profile_artifact, settings_for

    pinned = check_cpus_option(cpus, batch, host)
    settings = settings_for(runs=runs, duration=duration, warmup=warmup, threads=threads,
                            cpus=pinned, per_layer=per_layer, energy=energy,
                            energy_window=energy_window, precision=precision)
    return profile_artifact(
        artifact_path(artifact), target, settings, data=data, batch=batch, seed=seed,
        normalize=normalize, host=host, benchmark_model=_path(benchmark_model),
        identity=_path(identity), ssh_config=_path(ssh_config), remote_python=remote_python,
        trust_pickle=trust_pickle, sequence_length=sequence_length)


def split(model: Any, config: SplitConfig | None = None, *, data: Any, out: str | Path,
          example_inputs: Any = None, normalize: str | None = None, seed: int = 0,
          **options: Any) -> SplitResult:
    """Cut ``model`` at a layer, train a bottleneck there and export head and tail
    (``edgepipe split``). ``options`` build the :class:`SplitConfig` when none is given
    (``at="layer2"``, ``bottleneck=8``, ``bits=8``, ``formats=("onnx",)``, ...); its
    training seed and the data split use ``seed``. Returns the :class:`SplitResult` the
    command prints (accuracies, bytes per sample, artifacts), also kept in
    ``OUT/manifest.json``."""
    from edgepipe.split.api import SplitConfig, split_model
    from edgepipe.split.train import SplitTraining

    config = _config(SplitConfig, config, {"training": SplitTraining(seed=seed), **options}
                     if config is None else options)
    if data is None:
        raise InputError("Splitting trains the bottleneck, so it needs data.",
                         hint="give data='builtin:digits', an .npz, an image folder or "
                         "arrays (x, y).", reference="split-needs-data")
    return split_model(as_loaded_model(model, example_inputs), config, data, out,
                       normalize=normalize, seed=seed)


def as_loaded_model(model: Any, example_inputs: Any = None) -> Any:
    """:func:`edgepipe.model.as_loaded` (imported when first used)."""
    from edgepipe.model.load import as_loaded

    return as_loaded(model, example_inputs)


def split_data(data: Any, model: Any = None, *, example_inputs: Any = None, seed: int = 0,
               eval_fraction: float = 0.2, calib_size: int = 256) -> Splits:
    """Seeded train / calib / eval parts of ``data``, as compress and split make them; with
    ``model``, the data is shaped for and checked against its inputs first."""
    from edgepipe.data import Dataset, as_dataset, make_splits
    from edgepipe.model import classifier_classes

    if model is not None:
        loaded = as_loaded_model(model, example_inputs)
        dataset = as_dataset(data, loaded.inputs, num_classes=classifier_classes(loaded),
                             tokenizer=loaded.tokenizer_folder)
    elif isinstance(data, Dataset):
        dataset = data
    elif isinstance(data, (str, Path)):
        from edgepipe.data import load_data

        dataset = load_data(data)
    else:
        raise InputError("split_data without a model takes a DATA spec or a Dataset.",
                         hint="pass model= to shape arrays for it, or wrap them in "
                         "edgepipe.Dataset({'x': x}, labels=y).", reference="data-type")
    return make_splits(dataset, seed=seed, eval_fraction=eval_fraction,
                       calib_size=calib_size)


def artifact_path(artifact: Any) -> Path:
    """The path of an artifact: given as a path, or the one artifact of an ExportResult or
    CompressResult (its compressed one)."""
    if isinstance(artifact, (str, Path)):
        return Path(artifact)
    records = getattr(artifact, "artifacts", None)
    out = getattr(artifact, "out", None)
    records = None if records is None else [  # CompressResult's records are typed
        r if isinstance(r, dict) else r.to_dict() for r in records]
    if records is None or out is None:
        raise InputError(f"edgepipe cannot use a {type(artifact).__name__} as an artifact.",
                         hint="give the artifact's path, or the result of edgepipe.export or "
                         "edgepipe.compress.", reference="artifact-type")
    if len(records) != 1:
        names = ", ".join(r["name"] for r in records) or "none"
        raise InputError(
            f"The result holds {len(records)} artifacts ({names}); which one is meant is "
            "not clear.",
            hint="give one by path: result.out / result.artifacts[i]['path'].",
            reference="ambiguous-artifact")
    return Path(out) / records[0]["path"]


def _config(cls: type, config: Any, options: dict[str, Any]) -> Any:
    """``config``, or one of ``cls`` made from keyword ``options`` (an option ``cls`` lacks,
    or a required one missing, is an InputError)."""
    import dataclasses

    if config is not None:
        if options:
            raise InputError(
                f"Options ({', '.join(sorted(options))}) were given with a ready-made "
                f"{cls.__name__}.", hint="put them in the config, or leave the config out.",
                reference="conflicting-options")
        return config
    fields = [f for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(options) - {f.name for f in fields})
    missing = [f.name for f in fields if f.name not in options
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if unknown or missing:
        what = (f"{cls.__name__} has no option {', '.join(unknown)}" if unknown
                else f"{cls.__name__} needs {', '.join(missing)}")
        raise InputError(f"{what}.",
                         hint=f"{cls.__name__} takes: {', '.join(f.name for f in fields)}.",
                         reference="unknown-option")
    return cls(**options)


def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)
