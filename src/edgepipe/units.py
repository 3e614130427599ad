"""How sizes are written for people, in every command and report: binary units (KiB, MiB,
GiB; 1 KiB = 1024 bytes), three significant digits. JSON documents carry plain bytes."""

from __future__ import annotations


def format_bytes(value: float) -> str:
    """``6422528`` -> ``6.12 MiB``; below 1 KiB, whole bytes (``512 B``)."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{int(value)} B"
