"""The run directory (``-o OUT``) and its ``manifest.json``.

Every step that writes an artifact writes it through :meth:`RunDir.stage`: the file is
made under a temporary name in OUT and renamed into place only when the step succeeds, so
an interrupted or failed step never leaves a half-written file under a name that looks
whole. ``manifest.json`` itself is rewritten atomically (temp file + ``os.replace``) under
a lock file, so concurrent steps cannot lose each other's entries.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from edgepipe.data.preprocessing import Preprocessing
from edgepipe.documents import Document, optional_key
from edgepipe.errors import InputError
from edgepipe.model.loaded import ModelSource
from edgepipe.tensors import TensorSpec

MANIFEST = "manifest.json"
MANIFEST_SCHEMA = 1
# Temporary names carry the pid of the process that made them, so a later run can tell the
# leftovers of a killed process (SIGKILL, a power cut) from another live run's work.
_STAGING = re.compile(r"^\.staging-(?:(\d+)-)?[a-z0-9_]{8}$")
_PARTIAL = re.compile(r"^\..+\.(?:(\d+)-)?[a-z0-9_]{8}\.partial$")
_LEGACY_STALE_SECONDS = 3600  # leftovers without a pid (older edgepipe) once an hour old


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _file_mode() -> int:
    """The mode a plain ``open()`` would give a new file (0o666 less the umask): mkstemp's
    0o600 would leave reports and artifacts unreadable to a web server or a teammate."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, document: Any) -> None:
    atomic_write_bytes(path, (json.dumps(document, indent=2, default=str) + "\n").encode())


@dataclass
class ArtifactRecord(Document):
    """One artifact in the manifest: what it is, how it was made and how it checked out."""

    name: str
    path: str  # relative to the run directory
    format: str  # onnx | tflite | openvino | pt2 | safetensors | ...
    precision: str  # fp32 | fp16 | int8 | w4a8 | binary | mixed
    size_bytes: int
    sha256: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    files: list[str] = field(default_factory=list)  # every file (e.g. .xml and .bin)
    source: ModelSource = field(default_factory=ModelSource)  # the model it came from
    config: dict[str, Any] = field(default_factory=dict)  # the config that made it
    tool: dict[str, Any] = field(default_factory=dict)  # exporter / quantizer and version
    parity: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    layout: dict[str, str] = field(default_factory=dict)  # per tensor: NCHW / NHWC
    created: str = field(default_factory=lambda: _now())
    # how the data given to it was prepared (when it was made from data); eval, profile
    # and split run prepare theirs the same way unless told otherwise
    preprocessing: Preprocessing = optional_key(
        doc="how the data it was made with was prepared: eval, profile and split run "
        "prepare data the same way by default")

    @staticmethod
    def tensor_list(specs: list[TensorSpec]) -> list[TensorSpec]:
        """The specs as the record keeps them (a list; written as name, shape, dtype)."""
        return list(specs)


@dataclass
class ManifestStep(Document):
    """A step that ran in the run directory (export, compress, split), with the config it
    ran with and a short result."""

    step: str
    config: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    finished: str = field(default_factory=lambda: _now())


@dataclass
class Manifest(Document):
    """``manifest.json``: every artifact of the run directory and every step that ran."""

    SCHEMA_NAME: ClassVar[str] = "manifest"
    SCHEMA_VERSION: ClassVar[int] = MANIFEST_SCHEMA

    schema_version: int = MANIFEST_SCHEMA
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    steps: list[ManifestStep] = field(default_factory=list)

    def artifact(self, name: str) -> ArtifactRecord | None:
        return next((a for a in self.artifacts if a.name == name), None)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@contextlib.contextmanager
def removed_if_left_empty(path: str | Path) -> Iterator[None]:
    """For a command about to create OUT: if the block fails and OUT holds nothing (but the
    manifest's lock file), OUT goes too, so a refusal leaves no trace behind."""
    path = Path(path)
    existed = path.exists()
    try:
        yield
    except BaseException:
        if not existed and path.is_dir():
            with contextlib.suppress(OSError):
                if {p.name for p in path.iterdir()} <= {".manifest.lock"}:
                    shutil.rmtree(path)
        raise


class RunDir:
    """A run directory: artifacts, ``manifest.json``, profiles and reports of one run."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise InputError(
                f"The output path '{self.path}' is a file, not a folder.",
                hint="give -o a folder (new or existing) for the run's artifacts.",
                reference="out-not-a-folder",
            )
        if create:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(
                    f"Cannot create the output folder '{self.path}': {exc.strerror}.",
                    hint="choose a folder you can write to.",
                    reference="out-not-writable",
                ) from exc
        if self.path.is_dir():
            self.remove_stale()
            if self.manifest_path.exists():
                self.read_manifest()  # a corrupt or too-new manifest fails before any work

    def remove_stale(self) -> list[Path]:
        """Remove the staging folders and partial files that a killed edgepipe left in OUT
        (their process is gone); another live run's are left alone. Returns what went."""
        removed = []
        try:
            entries = list(os.scandir(self.path))
        except OSError:
            return removed
        now = time.time()
        for entry in entries:
            match = _STAGING.match(entry.name) or _PARTIAL.match(entry.name)
            if match is None:
                continue
            pid = match.group(1)
            try:
                stale = (not _alive(int(pid))) if pid else \
                    now - entry.stat(follow_symlinks=False).st_mtime > _LEGACY_STALE_SECONDS
            except OSError:
                continue
            if not stale:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            removed.append(Path(entry.path))
        return removed

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    # ------------------------------------------------------------ manifest

    def read_manifest(self) -> Manifest:
        """The manifest, or an empty one if none was written yet."""
        if not self.manifest_path.exists():
            return Manifest()
        try:
            document = json.loads(self.manifest_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            where = f" ({exc.msg} at line {exc.lineno})" if isinstance(
                exc, json.JSONDecodeError) else " (it is not text)"
            raise InputError(
                f"'{self.manifest_path}' is not valid JSON{where}.",
                hint="it was edited by hand or by another tool; fix or remove it, or use a "
                "new output folder.",
                reference="manifest-invalid",
            ) from exc
        except OSError as exc:
            raise InputError(f"Cannot read '{self.manifest_path}': {exc.strerror}.",
                             hint="check its permissions, or use a new output folder.",
                             reference="manifest-invalid") from exc
        if not isinstance(document, dict) or not isinstance(document.get("artifacts", []), list) \
                or not isinstance(document.get("steps", []), list) \
                or not all(isinstance(a, dict) and isinstance(a.get("name"), str)
                           for a in document.get("artifacts", [])):
            raise InputError(
                f"'{self.manifest_path}' is not an edgepipe manifest (it needs a mapping with "
                "lists 'artifacts' and 'steps', each artifact with a name).",
                hint="it was edited by hand or written by another tool; fix or remove it, or "
                "use a new output folder.", reference="manifest-invalid")
        version = document.get("schema_version", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise InputError(f"'{self.manifest_path}' has schema_version {version!r}, not a "
                             "number.", hint="fix or remove it, or use a new output folder.",
                             reference="manifest-invalid")
        if version > MANIFEST_SCHEMA:
            raise InputError(
                f"'{self.manifest_path}' was written by a newer edgepipe "
                f"(schema {document['schema_version']}).",
                hint="upgrade edgepipe, or use a new output folder.",
                reference="manifest-too-new",
            )
        try:  # a manifest from before the version field reads as version 1
            return Manifest.from_dict({**document, "schema_version": MANIFEST_SCHEMA},
                                      where=str(self.manifest_path))
        except InputError as exc:
            raise InputError(exc.message, hint="it was edited by hand or written by another "
                             "tool; fix or remove it, or use a new output folder.",
                             reference="manifest-invalid") from exc

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.path / ".manifest.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def add_artifact(self, record: ArtifactRecord) -> None:
        """Add (or replace, by name) an artifact entry in the manifest."""
        with self._locked():
            manifest = self.read_manifest()
            manifest.artifacts = [a for a in manifest.artifacts if a.name != record.name]
            manifest.artifacts.append(record)
            atomic_write_json(self.manifest_path, manifest.to_dict())

    def add_step(self, step: ManifestStep) -> None:
        """Record that a step ran, with its config and a short result."""
        with self._locked():
            manifest = self.read_manifest()
            manifest.steps.append(step)
            atomic_write_json(self.manifest_path, manifest.to_dict())

    def artifact(self, name: str) -> ArtifactRecord | None:
        return self.read_manifest().artifact(name)

    # ------------------------------------------------------------ files

    @contextlib.contextmanager
    def stage(self, filename: str) -> Iterator[Path]:
        """Yield a temporary path in OUT; rename it to ``filename`` only if the block succeeds.

        On failure the temporary file is removed and nothing appears under ``filename``.
        """
        final = self.path / filename
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.{os.getpid()}-", suffix=".partial",
                                   dir=final.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            os.replace(tmp_path, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """Yield a temporary folder in OUT for an artifact made of several files.

        Formats such as OpenVINO IR (.xml + .bin) or ONNX with external data name their
        files after each other, so they cannot be written under temporary names one by one
        as :meth:`stage` does. They are written here under their final names, checked, and
        moved into OUT with :meth:`publish`; whatever is left is removed at the end.
        """
        tmp = Path(tempfile.mkdtemp(prefix=f".staging-{os.getpid()}-", dir=self.path))
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def publish(self, files: list[Path], suffix: str = "") -> list[Path]:
        """Move staged files into OUT, main file (the first) last, each name plus ``suffix``.

        With ``suffix=".failed"`` this rejects an artifact as :meth:`reject` does, without
        it ever appearing under its normal name.
        """
        moved = []
        for file in [*files[1:], files[0]]:
            target = self.path / (file.name + suffix)
            os.replace(file, target)
            moved.append(target)
        return [moved[-1], *moved[:-1]]

    def reject(self, path: Path, suffix: str = ".failed") -> Path:
        """Rename a produced file that failed its check so it is not taken for a good one."""
        target = path.with_name(path.name + suffix)
        os.replace(path, target)
        return target
