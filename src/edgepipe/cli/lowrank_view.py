"""How ``edgepipe compress --method lowrank`` shows what it did to each layer."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from edgepipe.cli.common import escape, format_count


def render_lowrank(console: Console, artifact: dict[str, Any]) -> None:
    """Per layer: ranks, weights before and after, ONNX Runtime timings, the decision."""
    tool = artifact["tool"]
    if "rank_selection" not in tool or "layers" not in tool:
        return
    selection = tool["rank_selection"]
    view = Table(show_edge=False, title_justify="left", title=(
        f"{artifact['name']}: ranks by {selection['by']}; params {format_count(tool['params']['before'])}"
        f" -> {format_count(tool['params']['after'])} ({tool['params']['ratio']:.3f}), MACs "
        f"{format_count(tool['macs']['before'])} -> {format_count(tool['macs']['after'])} "
        f"({tool['macs']['ratio']:.3f})"))
    for column in ("layer", "kind", "ranks", "weights", "ORT ms (whole / factorized)",
                   "decision"):
        view.add_column(column)
    for layer in tool["layers"]:
        ranks = layer.get("ranks")
        after = layer.get("params_after")
        weights = (f"{format_count(layer['params_before'])} -> {format_count(after)}"
                   if after is not None and layer["decision"] == "factorized"
                   else format_count(layer.get("params_before", 0)))
        latency = layer.get("latency") or {}
        timing = (f"{latency['original_ms']:.4f} / {latency['factorized_ms']:.4f}"
                  if latency else "")
        view.add_row(escape(layer["layer"]), layer.get("kind", layer.get("op", "")),
                     "x".join(map(str, ranks)) if ranks else "",
                     weights, timing, escape(f"{layer['decision']}: {layer['reason']}"))
    console.print(view)
    for note in tool.get("notes", []):
        console.print(escape(note))
