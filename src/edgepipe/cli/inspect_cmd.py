"""``edgepipe inspect MODEL``: parameters, MACs, per-layer activations, peak activation memory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from edgepipe.cli.common import (
    NO_OPTIONS,
    DataOption,
    JsonOption,
    ModelArgument,
    ModelLoading,
    NormalizeOption,
    SeedOption,
    command,
    escape,
    format_bytes,
    format_count,
    takes_model,
)
from edgepipe.cli.export_cmd import Format

if TYPE_CHECKING:
    from rich.console import Console

    from edgepipe.analysis import ModelSummary

DEFAULT_ROWS = 40


@takes_model
def inspect(
    model: ModelArgument,
    loading: ModelLoading = NO_OPTIONS,
    data: DataOption = None,
    normalize: NormalizeOption = None,
    seed: SeedOption = 0,
    all_layers: Annotated[
        bool, typer.Option("--all", help=f"Show every layer (default: the first {DEFAULT_ROWS}).")
    ] = False,
    formats: Annotated[list[Format] | None, typer.Option(
        "--format", "-f", help="Check every op against this export format's converter "
        "(repeat for several), as export does before converting.")] = None,
    patch_plan: Annotated[bool, typer.Option(
        "--patch-plan", help="Also plan MCUNetV2-style patch-based execution of the first "
        "stages (CNNs whose body is a Sequential, e.g. MobileNetV2): peak memory, extra "
        "MACs, checked against the full map in torch.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Parameters, MACs, per-layer activations and peak activation memory of a model.

    With --data, also checks that the data fits the model (shapes, dtypes, label range)
    and shows the seeded train / calibration / eval split it would use. With --format,
    also shows per format whether its converter supports every op, and which it does not.
    """
    config = {"model": model, **loading.to_config(), "data": data,
              "normalize": normalize, "seed": seed, "all": all_layers,
              "formats": [f.value for f in formats or []], "patch_plan": patch_plan}
    with command("inspect", json_output, config) as out:
        from edgepipe.analysis.inspection import InspectConfig, inspect

        loaded = loading.load(model)
        inspection = inspect(loaded, InspectConfig(data=data, normalize=normalize, seed=seed,
                                                   patch_plan=patch_plan))
        if formats:
            from edgepipe.export.support import check_support

            inspection.support = check_support(loaded,
                                               list(dict.fromkeys(f.value for f in formats)))
        result = inspection.to_dict()
        rows = None if all_layers else DEFAULT_ROWS

        def show(console: Console) -> None:
            render(console, inspection.summary, rows)
            if inspection.data is not None:
                render_data(console, result["data"])
            if inspection.support is not None:
                render_support(console, result["support"])
            if inspection.patch_plan is not None:
                render_patch_plans(console, result["patch_plan"])

        out.result(result, render=show)


def render_patch_plans(console: Console, info: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="patch-based inference (int8 activations)", show_edge=False,
                  title_justify="left")
    for column in ("patch stage", "grid", "peak", "with input", "baseline", "reduction",
                   "extra MACs"):
        table.add_column(column, justify="right")
    for p in info["plans"]:
        table.add_row(f"blocks 0..{p['split'] - 1}", f"{p['grid']}x{p['grid']}",
                      format_bytes(p["peak_bytes"]), format_bytes(p["peak_with_input_bytes"]),
                      format_bytes(p["baseline_peak_bytes"]), f"{p['reduction']:.2f}x",
                      f"{100 * p['extra_macs_fraction']:.0f}%")
    console.print(table)
    check = info["check"]
    console.print(f"best plan checked in torch: max |diff| {check['max_abs_diff']:.2g} "
                  f"(outputs up to {check['output_scale']:.3g})")
    if check["output_scale"] < 1e-3:
        console.print("[yellow]the outputs are tiny (random weights?), so this check says "
                      "little; give --weights for a meaningful one[/]")


def render_data(console: Console, info: dict[str, Any]) -> None:
    """One paragraph on the data: count, shapes, labels, and the split sizes."""
    shapes = ", ".join(f"{name} {_shape(shape)}" for name, shape in info["shapes"].items())
    labels = (f"labelled, {info['num_classes']} classes" if info["labelled"] else "unlabelled")
    split_info = info["split"]
    console.print(f"[bold]{'data:':<18}[/] {escape(str(info['source']))}: {info['count']} samples "
                  f"({escape(shapes)}), {labels}; fits the model")
    console.print(f"[bold]{'split (seed ' + str(split_info['seed']) + '):':<18}[/] "
                  f"train {split_info['train_count']}, calib {split_info['calib_count']} "
                  f"(from train), eval {split_info['eval_count']}")


def render_support(console: Console, support: dict[str, Any]) -> None:
    """One line per format (supported / not / not checked), then each unsupported op."""
    styles = {"supported": "green", "unsupported": "bold red", "not-checked": "yellow"}
    for fmt, verdict in support["formats"].items():
        tool = verdict["tool"]
        label = f"{tool.get('tool', '')} {tool.get('version', '')}".strip()
        status = verdict["status"]
        if status == "supported":
            text = f"every op supported ({verdict['ops']} distinct ops)"
        elif status == "unsupported":
            text = f"{len(verdict['unsupported'])} unsupported op(s)"
        else:
            text = "not checked"
        console.print(f"[bold]{fmt + ':':<18}[/] [{styles[status]}]{text}[/]"
                      + (f" ({escape(label)})" if label else ""))
        for op in verdict["unsupported"]:
            via = [v for v in op["via"] if v != op["op"]]
            modules = f" ({', '.join(op['modules'])})" if op["modules"] else ""
            console.print(f"  {escape(op['op'])}"
                          + (f" (from {escape(', '.join(via))})" if via else "")
                          + f" used by {escape(', '.join(op['layers']))}{escape(modules)}")
        for note in verdict["notes"]:
            console.print(f"  [yellow]note:[/] {escape(note)}")


def render(console: Console, summary: ModelSummary, max_rows: int | None) -> None:
    """The layer table (``max_rows`` of it, plus the peak row) and the summary lines."""
    from rich.table import Table

    table = Table(title=f"{summary.model} ({summary.method})", title_justify="left")
    for header in ("#", "layer", "op", "output", "bytes", "params", "MACs", "live"):
        text = header in ("layer", "op", "output")
        # Numbers never wrap; names and shapes fold when the terminal is narrow.
        table.add_column(header, justify="left" if text else "right", no_wrap=not text,
                         overflow="fold")
    layers = summary.layers
    shown = layers if max_rows is None else layers[:max_rows]
    for layer in shown:
        table.add_row(*_row(layer.__dict__, layer.index == summary.peak_layer_index))
    hidden = len(layers) - len(shown)
    captions = ["* a view or in-place op: no new buffer", "◀ peak"]
    if hidden:
        table.add_row("…", f"+{hidden} more", *[""] * 6)
        captions.append(f"{hidden} more layers; --all shows every one")
        peak = summary.peak_layer_index
        if peak is not None and peak >= len(shown):
            table.add_row(*_row(layers[peak].__dict__, True))
    table.caption = "; ".join(captions)
    table.caption_justify = "left"
    console.print(table)
    peak_where = (f" at {summary.peak_layer} (#{summary.peak_layer_index})"
                  if summary.peak_layer is not None else " (the inputs; no ops)")
    lines = [
        ("inputs", ", ".join(f"{i['name']} {_shape(i['shape'])} {i['dtype']}"
                             for i in summary.inputs)),
        ("parameters", _count_text(summary.total_params)),
        ("MACs", _count_text(summary.total_macs)),
        ("MACs counted", summary.macs_counted),
        ("size", f"{format_bytes(summary.size_bytes)} ({summary.size_source})"),
        ("peak activations", f"{format_bytes(summary.peak_activation_bytes)}{peak_where}"),
        ("graph", summary.method),
    ]
    for label, text in lines:
        console.print(f"[bold]{label + ':':<18}[/] {escape(text)}")
    for note in summary.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")


def _row(layer: dict[str, Any], is_peak: bool) -> list[str]:
    shapes = ", ".join(_shape(s) for s in layer["output_shapes"]) or "?"
    out_bytes = format_bytes(layer["output_bytes"])
    if not layer["allocates"]:
        out_bytes += "*"
    live = format_bytes(layer["live_bytes"])
    cells = [str(layer["index"]), layer["name"], layer["op_type"], shapes, out_bytes,
             f"{layer['params']:,}" if layer["params"] else "",
             format_count(layer["macs"]) if layer["macs"] else "",
             f"[bold red]{live}◀[/]" if is_peak else live]
    # Markup only in the live cell, which holds no user text.
    return [escape(c) if i != 7 else c for i, c in enumerate(cells)]


def _count_text(value: int) -> str:
    """``1.81 G (1,814,073,344)``, or just ``64`` for a small count."""
    short = format_count(value)
    return short if short == str(value) else f"{short} ({value:,})"


def _shape(shape: list[int]) -> str:
    from edgepipe.tensors import format_shape

    return format_shape(shape)


