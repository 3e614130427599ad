"""What the int4-weight backends share about their tools: their own INFO logging kept off
the user's streams (some of these loggers have their own handlers and levels, which the
CLI's settings do not reach), and the error when a tool fails."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from edgepipe.errors import UnsupportedError, first_line


@contextlib.contextmanager
def quiet_logger(*names: str) -> Iterator[None]:
    """Raise each named logger to WARNING in the block, then restore its level."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def quantization_failed(tool: str, exc: Exception, others: str) -> UnsupportedError:
    """The error when ``tool`` fails on the model (``others``: the formats to try instead)."""
    return UnsupportedError(
        f"{tool} could not quantize the model: {type(exc).__name__}: {first_line(exc)}",
        hint=f"try another --group-size, --data-free, or --format {others}; --debug shows the "
        "traceback.", reference="quantization-failed")
