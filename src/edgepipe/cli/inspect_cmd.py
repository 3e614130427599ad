"""``edgepipe inspect MODEL`` (filled in by the analysis work)."""

from __future__ import annotations

import typer


def inspect(model: str = typer.Argument(..., help="MODEL spec")) -> None:
    """Parameters, MACs, per-layer activations and peak activation memory of a model."""
    raise typer.Exit(0)
