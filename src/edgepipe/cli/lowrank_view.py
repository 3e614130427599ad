"""How ``edgepipe compress --method lowrank`` shows what it did to each layer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from edgepipe.cli.common import escape, format_count

if TYPE_CHECKING:
    from edgepipe.compress.results import CompressedArtifact


def render_lowrank(console: Console, artifact: CompressedArtifact) -> None:
    """Per layer: ranks, weights before and after, ONNX Runtime timings, the decision."""
    selection = artifact.tool.lowrank
    if selection is None:
        return
    params, macs = selection.params, selection.macs
    view = Table(show_edge=False, title_justify="left", title=(
        f"{artifact.name}: ranks by {selection.by}; params {format_count(params.before)}"
        f" -> {format_count(params.after)} ({params.ratio:.3f}), MACs "
        f"{format_count(macs.before)} -> {format_count(macs.after)} ({macs.ratio:.3f})"))
    for column in ("layer", "kind", "ranks", "weights", "ORT ms (whole / factorized)",
                   "decision"):
        view.add_column(column)
    for layer in selection.layers:
        after = layer.params_after
        weights = (f"{format_count(layer.params_before)} -> {format_count(after)}"
                   if after is not None and layer.decision == "factorized"
                   else format_count(layer.params_before))
        timing = (f"{layer.original_ms:.4f} / {layer.factorized_ms:.4f}"
                  if layer.original_ms is not None and layer.factorized_ms is not None else "")
        view.add_row(escape(layer.layer), layer.kind,
                     "x".join(map(str, layer.ranks)) if layer.ranks else "",
                     weights, timing, escape(f"{layer.decision}: {layer.reason}"))
    console.print(view)
    for note in artifact.tool.notes:
        console.print(escape(note))
