"""The graph behind an artifact, for its peak activation memory and the estimator's layers.

An ``.onnx`` or ``.pt2`` artifact is its own graph. A ``.tflite`` or OpenVINO ``.xml``
carries no graph ``inspect`` reads, so the run directory's ``manifest.json`` is asked for
the same model in ONNX (an artifact with the same source), else for its source when that
is a bundled or torchvision architecture (whose MACs and activations do not depend on the
weights). A user's own factory is never imported for this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepipe.analysis.summary import ModelSummary
from edgepipe.tensors import TensorSpec


@dataclass(frozen=True)
class ManifestEntry:
    """What the run directory's ``manifest.json`` says of an artifact: its format,
    precision and source, and the other artifacts recorded beside it."""

    record: dict[str, Any]
    siblings: tuple[dict[str, Any], ...]

    @property
    def source(self) -> dict[str, Any]:
        return self.record.get("source") or {}


def artifact_record(artifact: Path) -> ManifestEntry | None:
    """The manifest entry of ``artifact`` in its run directory, if it has one."""
    manifest = artifact.parent / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        document = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    for record in document.get("artifacts", []):
        if record.get("path") == artifact.name:
            return ManifestEntry(record, tuple(document.get("artifacts", [])))
    return None


def _in_limits(loaded: Any, artifact: Path) -> Any:
    """``loaded`` with the integer input ranges its manifest records (token ids below the
    vocabulary size), so that the graph is traced on inputs the model takes: out of range,
    ONNX Runtime prints a Gather error before the retry on zeros."""
    from edgepipe.recorded import recorded_value_limits

    loaded.value_limits = loaded.value_limits or recorded_value_limits(artifact)
    return loaded


def summary_for(artifact: Path, trust_pickle: bool = False) -> tuple[ModelSummary | None, str]:
    """(inspect's summary, where the graph came from), or (None, why there is none)."""
    from edgepipe.analysis.inspect import inspect_model
    from edgepipe.model import load_model

    suffix = artifact.suffix.lower()
    if suffix in (".onnx", ".pt2"):
        return (inspect_model(_in_limits(load_model(str(artifact), check=False,
                                                    trust_pickle=trust_pickle), artifact)),
                f"{artifact.name} itself")
    record = artifact_record(artifact)
    if record is None:
        return None, (f"{artifact.name} has no manifest.json beside it naming its source, and "
                      "edgepipe reads graphs from ONNX and torch only")
    source = record.source
    for other in record.siblings:
        same = (other.get("source") or {}).get("sha256") == source.get("sha256")
        path = artifact.parent / str(other.get("path", ""))
        if same and other.get("format") == "onnx" and path.is_file():
            return (inspect_model(_in_limits(load_model(str(path), check=False), path)),
                    f"{path.name}, the ONNX artifact of the same source in manifest.json")
    spec = str(source.get("spec", ""))
    if spec.startswith(("builtin:", "torchvision:")):
        inputs = [TensorSpec.from_dict(i) for i in source.get("inputs", [])]
        loaded = load_model(spec, inputs=inputs or None, check=False)
        return inspect_model(loaded), f"{spec} (the artifact's source in manifest.json)"
    return None, (f"the source of {artifact.name} ({spec or 'unknown'}) is not an ONNX file, "
                  "a bundled model or a torchvision architecture")
