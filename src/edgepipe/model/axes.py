"""The dynamic axes that the manifest beside an artifact records for its source (a text
encoder's ``sequence``), matched to the artifact's own inputs.

An artifact keeps such an axis dynamic (``1 x sequence`` in ONNX, a bounded dimension in
OpenVINO and ExecuTorch); its samples, calibration data and padded texts still need a
length, the one the source was exported at. Read forgivingly: an artifact without a manifest,
or with one edgepipe cannot read, has no recorded axes and its dynamic dimensions stay.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgepipe.errors import InputError
from edgepipe.tensors import DynamicAxis, TensorSpec, sized

MANIFEST = "manifest.json"


def recorded_axes(artifact: str | Path, specs: list[TensorSpec]) -> list[DynamicAxis]:
    """The dynamic axes the source of ``artifact`` records, naming ``specs`` (the artifact's
    inputs; a format that renamed its inputs, LiteRT's ``args_N`` or ExecuTorch's ``input``,
    kept their order, so they are matched by position); empty when none are recorded."""
    record = _record(Path(artifact))
    source = record.get("source") if isinstance(record, dict) else None
    options = source.get("options") if isinstance(source, dict) else None
    raw = options.get("dynamic_axes") if isinstance(options, dict) else None
    if not isinstance(raw, list):
        return []
    theirs = [str(i.get("name")) for i in source.get("inputs") or [] if isinstance(i, dict)]
    renames = by_position(theirs, [spec.name for spec in specs])
    axes = [axis for axis in map(DynamicAxis.from_dict, raw) if axis is not None]
    return [replace(axis, inputs=tuple(renames.get(n, n) for n in axis.inputs)) for axis in axes]


def by_position(source: list[str], own: list[str]) -> dict[str, str]:
    """Source input name -> the artifact's own name, by position, where the format renamed
    the inputs and kept their order (empty when nothing was renamed or the counts differ)."""
    if len(source) != len(own) or source == own:
        return {}
    return dict(zip(source, own, strict=True))


def nominal_inputs(artifact: str | Path, specs: list[TensorSpec]) -> list[TensorSpec]:
    """``specs`` (an artifact's inputs) with the dynamic axes its manifest records filled by
    their nominal sizes (``1 x sequence`` -> ``1 x 128``): what samples are made with and
    texts are padded to. Other dynamic dimensions stay."""
    return sized(specs, recorded_axes(artifact, specs))


def inputs_at_length(artifact: str | Path, specs: list[TensorSpec],
                     length: int | None) -> list[TensorSpec]:
    """:func:`nominal_inputs`, with the ``sequence`` axis at ``length`` tokens where given
    (``profile --sequence-length``): an InputError when the artifact has no dynamic sequence
    (not a text encoder, or a format that fixed it) or ``length`` is outside 1..max."""
    axes = recorded_axes(artifact, specs)
    if length is None:
        return sized(specs, axes)
    name = Path(artifact).name
    axis = next((a for a in axes if a.name == "sequence"), None)
    dynamic = axis is not None and any(
        spec.name in axis.inputs and spec.rank > axis.axis
        and not isinstance(spec.shape[axis.axis], int) for spec in specs)
    if axis is None or not dynamic:
        why = ("its manifest records no dynamic sequence axis (only a Hugging Face text "
               "encoder exported by edgepipe has one)" if axis is None else
               f"its format fixed the sequence at {axis.size} tokens")
        raise InputError(
            f"--sequence-length {length} does not apply to {name}: {why}.",
            hint="drop --sequence-length, or profile the ONNX, OpenVINO or float .pte "
            "export of the same model (a .tflite and an int8 .pte keep one length).",
            reference="no-dynamic-sequence")
    if not 1 <= length <= axis.max:
        raise InputError(
            f"--sequence-length {length} is outside what {name} takes (1 to {axis.max} "
            "tokens, the model's max_position_embeddings).",
            hint=f"give a length from 1 to {axis.max}.", reference="bad-sequence-length")
    others = [a for a in axes if a is not axis]
    return sized(specs, [*others, replace(axis, size=length)])


def _record(artifact: Path) -> Any:
    manifest = artifact.parent / MANIFEST
    try:
        document = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    artifacts = document.get("artifacts") if isinstance(document, dict) else None
    return next((a for a in artifacts or [] if isinstance(a, dict)
                 and a.get("path") == artifact.name), None)
