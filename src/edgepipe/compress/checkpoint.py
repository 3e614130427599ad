"""Checkpoints of trained models in OUT, so a failure after a long training step loses
nothing: the same command run again finds the trained weights and skips the training.

They live in ``OUT/.checkpoints/`` (the staging folder of a run is removed when the run
ends, failed or not; this folder is not), named by a hash of everything the training
depends on: the model's starting weights, the teacher's, the config and the training data.
A run that succeeds removes the checkpoints it used.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgepipe.export.base import log
from edgepipe.rundir import atomic_write_bytes

if TYPE_CHECKING:
    import torch

FOLDER = ".checkpoints"

# What a checkpoint keeps beside the weights: the training's record, a JSON object (it is
# written as JSON and read back as such), e.g. the epochs run and the validation history.
JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
TrainingRecord = dict[str, JsonValue]


def folder(out: Path) -> Path:
    return Path(out) / FOLDER


def fingerprint(*parts: Any) -> str:
    """A short hash of modules' states, arrays, and JSON-able values."""
    digest = hashlib.sha256()
    for part in parts:
        _update(digest, part)
    return digest.hexdigest()[:20]


def _update(digest: Any, part: Any) -> None:
    import torch  # torch only where a model is checkpointed: compress's import stays light

    if isinstance(part, torch.nn.Module):
        for name, tensor in part.state_dict().items():
            digest.update(name.encode())
            _update(digest, tensor)
    elif isinstance(part, torch.Tensor):
        digest.update(part.detach().cpu().contiguous().numpy().tobytes())
    elif isinstance(part, np.ndarray):
        digest.update(np.ascontiguousarray(part).tobytes())
    elif isinstance(part, dict) and all(isinstance(v, np.ndarray) for v in part.values()):
        for key, value in part.items():
            digest.update(str(key).encode())
            _update(digest, value)
    elif part is None:
        digest.update(b"none")
    else:
        digest.update(json.dumps(part, sort_keys=True, default=str).encode())


def load(path: Path | None, modules: list[torch.nn.Module]) -> TrainingRecord | None:
    """Restore ``modules`` from ``path`` and return the record saved with them; None if there
    is no checkpoint (or it does not fit, when it is set aside)."""
    if path is None or not path.is_file():
        return None
    import torch

    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        for module, state in zip(modules, saved["states"], strict=True):
            module.load_state_dict(state)
            module.eval()
    except Exception as exc:  # an unreadable or foreign file: train again
        log.warning("Checkpoint %s could not be used (%s); training again.", path, exc)
        return None
    os.utime(path)  # marks it as used by this run
    log.warning("Reusing the trained model checkpointed at %s (training skipped).", path)
    record: TrainingRecord = saved["record"]
    record["checkpoint"] = {"path": str(path), "reused": True}
    return record


def save(path: Path | None, modules: list[torch.nn.Module], record: TrainingRecord) -> None:
    if path is None:
        return
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({"states": [m.state_dict() for m in modules],
                "record": json.loads(json.dumps(record, default=str))}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    record["checkpoint"] = {"path": str(path), "reused": False}
    log.info("Trained model checkpointed at %s", path)


def kept_hint(paths: list[Path]) -> str:
    existing = [str(p) for p in paths if p.is_file()]
    if not existing:
        return ""
    return (f" The trained model is kept at {', '.join(existing)}; running the same command "
            "again reuses it and skips the training.")


def discard(paths: list[Path]) -> None:
    """Remove checkpoints that are no longer needed, and their folder once it is empty."""
    for path in paths:
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()
