"""What the ``manifest.json`` beside an artifact records about it, as eval, profile and
serve read it: how its data was prepared (normalization, tokenizer), the ranges of its
integer inputs, its source's input names and specs. Every reader is read-only and forgiving:
an artifact without a manifest (or with one edgepipe cannot read) gets the defaults.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgepipe.data.preprocessing import Preprocessing
from edgepipe.documents import ABSENT
from edgepipe.errors import InputError
from edgepipe.model.axes import by_position
from edgepipe.tensors import TensorSpec

if TYPE_CHECKING:
    from edgepipe.data import Dataset
    from edgepipe.rundir import ArtifactRecord

log = logging.getLogger("edgepipe")


def source_named(artifact: str | Path,
                 specs: list[TensorSpec]) -> tuple[list[TensorSpec], dict[str, str]]:
    """``specs`` (the artifact's inputs) under its source's input names where its format
    renamed them (LiteRT's ``args_N``, ExecuTorch's ``input``, ``input_1``...), as the
    ``manifest.json`` beside it records them in the same order, so that text data finds its
    ``input_ids``; and the map back to the artifact's names (empty when nothing was renamed)."""
    record = artifact_record(artifact)
    own = [spec.name for spec in specs]
    back = {} if record is None or "input_ids" in own else _renames(record, own)
    if not back:
        return specs, {}
    mine_to_source = {mine: source for source, mine in back.items()}
    return [dataclasses.replace(spec, name=mine_to_source[spec.name]) for spec in specs], back


def _renames(record: ArtifactRecord, own: list[str]) -> dict[str, str]:
    """Source input name -> the artifact's own name (:func:`edgepipe.model.axes.by_position`)."""
    return by_position([spec.name for spec in record.source.inputs], own)


def renamed(dataset: Dataset, back: dict[str, str], specs: list[TensorSpec]) -> Dataset:
    """``dataset`` with its arrays under the artifact's own names (``back``, from
    :func:`source_named`) and in its dtypes (LiteRT's token ids are int32)."""
    if not back:
        return dataset
    dtypes = {spec.name: spec.dtype for spec in specs}
    inputs = {back.get(name, name): array for name, array in dataset.inputs.items()}
    inputs = {name: array.astype(dtypes[name]) if name in dtypes and dtypes[name]
              and array.dtype != np.dtype(dtypes[name]) else array
              for name, array in inputs.items()}
    return dataclasses.replace(dataset, inputs=inputs)


def recorded_preprocessing(artifact: str | Path) -> Preprocessing | None:
    """How the data of ``artifact`` was prepared when it was made, as the ``manifest.json``
    beside it records (None without a manifest, a record or a preprocessing in it)."""
    record = artifact_record(artifact)
    return (record.preprocessing or None) if record is not None else None


def recorded_tokenizer(artifact: str | Path,
                       recorded: Preprocessing | None = None) -> str | None:
    """The folder whose tokenizer prepares text data for ``artifact``: the one its recorded
    preprocessing names, else the folder of its source's ``hf:FOLDER`` spec in the
    ``manifest.json`` beside it (None without either)."""
    if recorded is not None and recorded.tokenizer is not None:
        return recorded.tokenizer
    record = artifact_record(artifact)
    if record is None or not record.source.spec.lower().startswith("hf:"):
        return None
    folder = record.source.options.get("folder")
    return str(folder) if folder else record.source.spec[3:]


def recorded_value_limits(artifact: str | Path) -> dict[str, int]:
    """The ranges of the integer inputs of ``artifact`` (token ids below the vocabulary
    size, ...) as its source recorded them in the ``manifest.json`` beside it (``hf:``
    models record them; empty otherwise): random inputs keep inside them."""
    record = artifact_record(artifact)
    limits = record.source.options.get("value_limits") if record is not None else None
    if not isinstance(limits, dict):
        return {}
    # a hand-edited manifest may hold anything: only whole numbers are limits
    by_name = {str(k): int(v) for k, v in limits.items()
               if isinstance(v, int) and not isinstance(v, bool) and v > 0}
    # a format that renames its inputs (LiteRT's args_N, ExecuTorch's unnamed ones) keeps
    # the source's order: the limits follow the inputs by position
    assert record is not None
    renames = _renames(record, [spec.name for spec in record.inputs])
    by_name.update({mine: by_name[theirs] for theirs, mine in renames.items()
                    if theirs in by_name and mine not in by_name})
    return by_name


def artifact_record(artifact: str | Path) -> ArtifactRecord | None:
    """The record of ``artifact`` in the ``manifest.json`` beside it (None without one, or
    when the manifest cannot be read: eval does not need it)."""
    from edgepipe.rundir import MANIFEST, Manifest

    path = Path(artifact)
    manifest = path.parent / MANIFEST
    if not manifest.is_file():
        return None
    try:
        document = Manifest.from_dict(json.loads(manifest.read_text()), where=str(manifest))
    except (OSError, ValueError, InputError) as exc:
        log.debug("%s not read for the record of %s: %s", manifest, path.name, exc)
        return None
    return next((a for a in document.artifacts if a.path == path.name), None)


def normalize_for(artifact: str | Path, data: Any, normalize: str | None,
                  recorded: Preprocessing | None = ABSENT) -> str | None:
    """The ``--normalize`` to load ``data`` with for ``artifact``: for an image source (a
    folder, ``builtin:digits``; an .npz is used as stored), the one the artifact was made
    with (``recorded``, by default read from its ``manifest.json``) unless ``normalize`` is
    given, which wins with a warning on stderr when it differs."""
    from edgepipe.data import choose_normalize

    if not isinstance(data, (str, Path)) or str(data).lower().endswith(".npz"):
        return normalize
    if recorded is ABSENT:
        recorded = recorded_preprocessing(artifact)
    return choose_normalize(recorded, normalize, Path(artifact).name)


def recorded_source_inputs(artifact: str | Path) -> list[TensorSpec] | None:
    """The source model's input specs, as the manifest beside ``artifact`` records them."""
    record = artifact_record(artifact)
    return list(record.source.inputs) if record is not None and record.source.inputs else None

