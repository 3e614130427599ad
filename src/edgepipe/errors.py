"""The errors edgepipe raises on purpose.

Every expected failure is an :class:`EdgepipeError` with a short ``reference`` (a stable,
kebab-case slug users can search for), a ``message`` that says what is wrong and a
``hint`` that says what to do instead. The CLI prints them as::

    error: model-not-found
    No file at 'nets/missing.onnx'.
    hint: check the path, or use torchvision:NAME for a torchvision architecture.

and exits with status 1. This module imports only edgepipe.json_types.
"""

from __future__ import annotations

import re
from typing import Any

from edgepipe.json_types import JsonObject

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (no terminal colour codes), for error text."""
    text = _ANSI.sub("", str(exc)).strip() or type(exc).__name__
    return text.splitlines()[0][:limit]

def root_cause(exc: BaseException) -> str:
    """``Type: first line`` of the innermost exception in a ``raise ... from`` chain."""
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return f"{type(exc).__name__}: {first_line(exc)}"


# Exit statuses, one per class of outcome (docs/errors.md lists them for users).
EXIT_FAILURE = 1  # an expected failure: bad input, an unsupported op, a tolerance missed...
EXIT_USAGE = 2  # the command line itself is wrong (unknown option, missing argument)
PARTIAL_EXIT = 3  # part of the job done: some formats or variants made, the others named
EXIT_BACKEND_MISSING = 4  # an optional backend (runtime, converter) is not installed
EXIT_UNREACHABLE = 5  # a device or server could not be reached, or the connection dropped
EXIT_INTERNAL = 70  # a bug in edgepipe or a backend (internal-error); EX_SOFTWARE
EXIT_INTERRUPTED = 130  # Ctrl-C; a signal N gives 128 + N (143 for SIGTERM)
EXIT_CODES = {0: "success", EXIT_FAILURE: "an expected failure (bad input, unsupported, "
              "tolerance missed)", EXIT_USAGE: "a usage error in the command line",
              PARTIAL_EXIT: "partly done: some formats or variants were made and kept, the "
              "others failed (each is named) or are over the accuracy budget",
              EXIT_BACKEND_MISSING: "an optional backend is not installed",
              EXIT_UNREACHABLE: "a device or server could not be reached, or the connection "
              "to it was lost", EXIT_INTERNAL: "internal-error: a bug in edgepipe or a backend",
              EXIT_INTERRUPTED: "interrupted (Ctrl-C)", 143: "terminated (SIGTERM)",
              129: "hung up (SIGHUP)"}


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a full disk or quota: a
    condition that stops every later step too, so no format or step goes on after it (some
    converters abort the whole process when they cannot write)."""
    import errno

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP) raised in the main thread, handled like Ctrl-C: every ``finally``
    runs, so staging folders go and nothing half-written is left; the exit status is
    128 + the signal's number (143 for SIGTERM)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum


def interrupt_exit_code(exc: BaseException) -> int:
    """The exit status for an interruption: 130 for Ctrl-C, 128 + N for signal N."""
    return getattr(exc, "exit_code", EXIT_INTERRUPTED)


class EdgepipeError(Exception):
    """An expected failure: bad input, unsupported op, tolerance exceeded, and so on."""

    reference: str = "edgepipe-error"
    exit_code: int = 1

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        reference: str | None = None,
        details: JsonObject | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if reference is not None:
            self.reference = reference
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The error as a JSON-ready mapping (used by ``--json``)."""
        return {
            "type": type(self).__name__,
            "reference": self.reference,
            "message": self.message,
            "hint": self.hint,
            "details": self.details,
        }

    def __str__(self) -> str:
        text = f"{self.reference}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class InputError(EdgepipeError):
    """The user gave something edgepipe cannot use (a path, a spec, an option value)."""

    reference = "bad-input"


class ModelError(InputError):
    """A MODEL spec that cannot be loaded, or a model that fails when run."""

    reference = "model-error"


class WeightsError(ModelError):
    """Weights that cannot be loaded into the model (wrong keys, shapes, or format)."""

    reference = "weights-mismatch"


class UnsafePickleError(ModelError):
    """A pickled whole module, refused unless the user trusts it explicitly."""

    reference = "pickle-refused"


class ShapeError(InputError):
    """An input shape that does not fit the model or the spec."""

    reference = "shape-mismatch"


class DataError(InputError):
    """A DATA spec that cannot be loaded, or data that is unusable (NaN, bad labels)."""

    reference = "data-error"


class UnsupportedError(EdgepipeError):
    """An operator, format or method that a backend cannot handle."""

    reference = "unsupported"


class ToleranceError(EdgepipeError):
    """A result outside its tolerance (parity check, accuracy budget)."""

    reference = "tolerance-exceeded"


class TargetError(EdgepipeError):
    """A target that is unknown, unreachable, or that the artifact does not fit."""

    reference = "target-error"


class BackendMissingError(EdgepipeError):
    """An optional backend (a runtime or converter) that is not installed."""

    reference = "backend-missing"
    exit_code = EXIT_BACKEND_MISSING


# Optional backends: the top-level module each imports as, and the extra that installs it.
EXTRAS = {
    "openvino": "openvino", "nncf": "openvino",
    "litert_torch": "tflite", "ai_edge_litert": "tflite", "tflite_micro": "tflite",
    "brevitas": "lowbit", "onnxoptimizer": "lowbit",
    "kserve": "serve", "tritonclient": "serve", "grpc": "serve",
    "executorch": "executorch",
}


def backend_missing(exc: BaseException, what: str | None = None) -> BackendMissingError | None:
    """The BackendMissingError for ``exc`` when it (or what it was raised from) is the import
    of an optional backend that is not installed; None otherwise."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ModuleNotFoundError) and current.name:
            root = current.name.split(".")[0]
            if root in EXTRAS:
                extra = EXTRAS[root]
                return BackendMissingError(
                    f"{what or 'This'} needs {root}, which is not installed: pip install "
                    f"'edgepipe[{extra}]'.",
                    hint=f"pip install 'edgepipe[{extra}]' (or 'edgepipe[all]' for every "
                    "backend).", reference="backend-missing", details={"module": root,
                                                                       "extra": extra})
        current = current.__cause__ or current.__context__
    return None


def require_backends(modules: tuple[str, ...], what: str) -> BackendMissingError | None:
    """The BackendMissingError for the first of ``modules`` (top-level import names of
    optional backends) that is not installed, without importing any of them; else None."""
    import importlib.util

    for module in modules:
        if importlib.util.find_spec(module) is None:
            return backend_missing(ModuleNotFoundError(name=module), what)
    return None


class UnreachableError(TargetError):
    """A device or server that cannot be reached, or whose connection dropped mid-way."""

    reference = "unreachable"
    exit_code = EXIT_UNREACHABLE
