"""A recipe's steps and their cache.

Each step's outputs are kept with a digest of everything it depends on: the step's own
configuration, the content of the model and data it reads (files by their sha256, builtins
by name), the artifacts it reads (by sha256) and edgepipe's version. A re-run with the same
digest reuses the outputs; an edit changes only the digests of the steps it touches. A
step writes into a hidden folder beside its destination that is renamed into place only
when it has finished, and its cache record is written after that: a killed run leaves
either the old outputs or none, never half of them, and resuming redoes only what did not
finish.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgepipe.rundir import atomic_write_json

CACHE_DIR = ".cache"


def digest(document: Any) -> str:
    text = json.dumps(document, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def source_identity(spec: str | None) -> Any:
    """What identifies a MODEL or DATA spec's content: a file's sha256, a folder's file
    names, sizes and hashes, or the spec itself (builtins, torchvision architectures; a
    ``package.module:factory`` is known by its name only: its code is not hashed)."""
    from edgepipe.model import file_sha256

    if spec is None:
        return None
    path = Path(spec)
    if path.is_file():
        return {"file": str(path), "sha256": file_sha256(path)}
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return {"folder": str(path), "files": [
            (str(p.relative_to(path)), p.stat().st_size, file_sha256(p)) for p in files]}
    return {"spec": spec}


class StepCache:
    """``OUT/.cache/KEY.json``: the digest a step ran with, its result and its outputs."""

    def __init__(self, out: Path) -> None:
        self.folder = out / CACHE_DIR
        self.out = out

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str, step_digest: str) -> Any:
        """The result a step's record holds (as JSON data), or None when there is no record,
        it was made with another digest, or one of its outputs is gone."""
        path = self._path(key)
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if record.get("digest") != step_digest:
            return None
        if not all((self.out / o).exists() for o in record.get("outputs", [])):
            return None
        return record["result"]

    def put(self, key: str, step_digest: str, result: Any, outputs: list[str]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self._path(key), {"digest": step_digest, "outputs": outputs,
                                            "result": result})

    def forget(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


@contextmanager
def building(destination: Path) -> Iterator[Path]:
    """A fresh hidden folder beside ``destination``; renamed to it (replacing what was
    there) when the block ends without an error, removed otherwise."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.parent / f".{destination.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = destination.parent / f".{destination.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if destination.exists():
        os.replace(destination, old)
    os.replace(staging, destination)
    shutil.rmtree(old, ignore_errors=True)
