"""Runtimes behind one shape: ``open_artifact(path) -> Session`` (``.run``, ``.inputs``...).

One module per runtime, imported only when an artifact of its kind is opened; which runtime
opens which suffix, and through which function, is :mod:`edgepipe.formats`' to say.
"""

from __future__ import annotations

from pathlib import Path

from edgepipe import formats
from edgepipe.errors import EdgepipeError, InputError, UnsupportedError, backend_missing, first_line
from edgepipe.runtime.base import Session, default_threads


def open_artifact(path: str | Path, threads: int | None = None, *, spin: bool = True,
                  trust_pickle: bool = False) -> Session:
    """Open an artifact in the runtime it is deployed with; ``threads`` None = all usable cores.

    The file is checked first (:func:`edgepipe.model.files.validate_artifact`: magic bytes,
    completeness, and for a .pt2 anything torch would unpickle, refused unless
    ``trust_pickle``), so a bad file is a clear error before a runtime reads it; a file the
    runtime still cannot load is an ``artifact-unloadable`` error with the runtime's words, and
one whose runtime is an extra that is not installed is ``backend-missing``.

    ``spin=False`` stops ONNX Runtime's worker threads from spinning after each run (they
    otherwise hold the cores for a while, which is fastest for back-to-back runs and slows
    whatever else shares the cores: a network client or server in the same box)."""
    from edgepipe.model.files import validate_artifact

    path = Path(path)
    suffix = path.suffix.lower()
    fmt = formats.by_suffix(suffix)
    if fmt is None:
        raise UnsupportedError(
            f"edgepipe has no runtime for '{path.name}' ({suffix or 'no suffix'}).",
            hint=f"artifacts are {formats.describe_suffixes()}.",
            reference="unknown-artifact",
        )
    if not path.is_file():
        raise InputError(f"No artifact at '{path}'.", hint="check the path.",
                         reference="artifact-not-found")
    validate_artifact(path, trust_pickle=trust_pickle)
    try:
        opener = formats.load(fmt.opener)
        return opener(path, threads, spin=spin, trust_pickle=trust_pickle)
    except EdgepipeError:
        raise
    except Exception as exc:  # the runtime's own message for a file it cannot read
        missing = backend_missing(exc, f"Opening '{path.name}' in {fmt.runtime_label}")
        if missing is not None:  # its runtime is an extra that is not installed
            raise missing from exc
        raise InputError(f"{fmt.runtime} cannot load '{path}': {first_line(exc, 400)}",
                         hint="check that the file is complete (re-export it) and matches "
                         "its suffix.", reference="artifact-unloadable") from exc


__all__ = ["Session", "default_threads", "open_artifact"]
