"""Third-party native log lines kept off stderr, unless asked for (``edgepipe -v``).

Backends written in C++ log straight to file descriptor 2 on import or when a runtime
starts: absl's ``WARNING: All log messages before absl::InitializeLog() ...``, TensorFlow's
``I0000 ... port.cc] oneDNN custom operations are on ...`` (litert-torch's converter),
LiteRT's ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.``. Environment
variables stop some (:data:`QUIET_ENV`, set only where the user has not set them); the
others are written before any setting can be read, so :func:`native_stderr` redirects
fd 2 around the import or call that writes them, then writes back every line that is not
informational chatter (:data:`CHATTER`): warnings and errors always reach stderr, and
everything does when the block raises. The chatter goes to the debug log.

Nothing here is active until the CLI calls :func:`silence`; the library alone leaves
stderr as the backends write it.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("edgepipe.native")

QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow/LiteRT C++: warnings and errors only
    "GLOG_minloglevel": "2",  # glog users (OpenVINO plugins, some converters)
    "ONEDNN_VERBOSE": "0",  # oneDNN's own primitive log
}

# Informational lines, dropped unless -v: absl's INFO lines (I<MMDD> ...), its preamble
# before InitializeLog, and TFLite's minimal logger's "INFO: " lines.
CHATTER = re.compile(
    r"^(I\d{4} [\d:.]+\s+\d+ \S+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"
    r"|INFO: "
    r"|\[(cpuinfo_utils|threadpool)\.cpp:\d+\] )")  # ExecuTorch: CPU probing, threadpool size

# Top-level packages whose import loads native code that logs.
NOISY_PACKAGES = frozenset({"litert_torch", "ai_edge_litert", "litert_converter", "tensorflow",
                            "openvino", "nncf", "executorch"})

# Held while fd 2 is redirected: a live display refreshes only when it can take it, so its
# output is never captured with the backends'.
stderr_lock = threading.Lock()
_active = False


def silence() -> None:
    """Keep the native chatter off stderr from now on (the CLI, unless -v)."""
    global _active
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for name in ("absl", "tensorflow", "nncf", "openvino"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
    # torchao's and executorch's imports register Enums with torch's pytree, which warns
    # that this is deprecated: torch's business, not the user's. A filter, because torch
    # sets its loggers' levels when it is imported.
    pytree = logging.getLogger("torch.utils._pytree")
    if not any(isinstance(f, _BelowError) for f in pytree.filters):
        pytree.addFilter(_BelowError())
    if not any(isinstance(f, _QuietImports) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImports())
    _active = True


class _BelowError(logging.Filter):
    """Drops records below ERROR (kept in the debug log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        log.debug("%s: %s", record.name, record.getMessage())
        return False


@contextlib.contextmanager
def native_stderr(what: str) -> Iterator[None]:
    """Capture what native code writes to fd 2 in the block; write back all but the
    chatter (everything when the block raises). A no-op unless :func:`silence` ran, and
    while another capture runs (a nested one, or another thread's: waiting for it could
    deadlock two threads importing, so the block runs uncaptured instead)."""
    if not _active or not stderr_lock.acquire(blocking=False):
        yield
        return
    try:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 to redirect
            saved = None
        if saved is None:
            yield
            return
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            failed = True
            try:
                yield
                failed = False
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                _write_back(sink.read().decode("utf-8", errors="replace"), what, failed)
    finally:
        stderr_lock.release()


def _write_back(text: str, what: str, failed: bool) -> None:
    kept, dropped = [], []
    for line in text.splitlines():
        (dropped if CHATTER.match(line) and not failed else kept).append(line)
    if dropped:
        log.debug("%s said:\n%s", what, "\n".join(dropped))
    if kept:
        sys.stderr.write("\n".join(kept) + "\n")
        sys.stderr.flush()


class _QuietImports(importlib.abc.MetaPathFinder):
    """Imports :data:`NOISY_PACKAGES` inside :func:`native_stderr`."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in NOISY_PACKAGES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _QuietLoader(spec.loader, fullname)
                return spec
        return None


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: Any, name: str) -> None:
        self._loader, self._name = loader, name

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        with native_stderr(f"import {self._name}"):
            self._loader.exec_module(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)
