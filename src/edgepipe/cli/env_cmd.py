"""``edgepipe env``."""

from __future__ import annotations


def env() -> None:
    """Versions of every backend, the CPU and its ISA features, threads."""
