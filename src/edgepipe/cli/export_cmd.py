"""``edgepipe export MODEL --format F -o OUT``: a thin shell over ``export_model``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from edgepipe.cli import common
from edgepipe.cli.common import NO_OPTIONS, ModelLoading, command, format_bytes, takes_model
from edgepipe.formats import describe_exports, export_formats

# --format's choices: the formats edgepipe exports to, from the registry (edgepipe.formats)
Format = StrEnum("Format", {name: name for name in export_formats()})  # type: ignore[misc]


HELP = (f"Export MODEL to {describe_exports()}; every artifact is run in its own runtime and "
        "compared with the original before it is kept.")


@takes_model
def export(
    model: common.ModelArgument,
    out: common.OutOption,
    name: common.ArtifactNameOption = None,
    formats: Annotated[list[Format] | None, typer.Option(
        "--format", "-f", help="Format to export (repeat for several). Default: onnx.")] = None,
    opset: Annotated[int | None, typer.Option(help="ONNX opset (default: the exporter's).")] = None,
    dynamic_batch: Annotated[bool, typer.Option(
        "--dynamic-batch", help="Make the batch dimension dynamic (ONNX, OpenVINO).")] = False,
    simplify: Annotated[bool, typer.Option(
        "--simplify", help="Simplify the ONNX graph with onnxslim; kept only if the outputs "
        "do not change.")] = False,
    nhwc: Annotated[bool, typer.Option(
        "--nhwc", help="TFLite: channel-last 4-D inputs and outputs, no TRANSPOSE at the "
        "edges.")] = False,
    fp16: Annotated[bool, typer.Option(
        "--fp16", help="OpenVINO: compress weights to fp16.")] = False,
    atol: Annotated[float | None, typer.Option(
        help="Parity tolerance: max |artifact - reference| per output as a fraction of "
        "max(1, max|reference|). Default: 1e-4 for fp32, 1e-2 for fp16.")] = None,
    batch: Annotated[int, typer.Option(
        "--batch-size", help="Batch size of the parity inputs.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the random parity inputs, or of the "
                                      "split --data samples are drawn from.")] = 0,
    data: common.DataOption = None,
    samples: Annotated[int, typer.Option(
        help="With --data: how many eval-split samples parity runs on.")] = 64,
    normalize: common.NormalizeOption = None,
    threads: Annotated[int | None, typer.Option(
        help="Runtime threads for the parity check (default: every usable core).")] = None,
    loading: ModelLoading = NO_OPTIONS,
    json_output: common.JsonOption = False,
) -> None:
    """Export MODEL to each --format (see HELP, the text the CLI shows)."""
    config: dict[str, Any] = {
        "model": model, "out": str(out), "name": name, "formats": [f.value for f in formats or [Format.onnx]],
        "opset": opset, "dynamic_batch": dynamic_batch, "simplify": simplify, "nhwc": nhwc,
        "fp16": fp16, "atol": atol, "batch": batch, "seed": seed, "threads": threads,
        "data": data, "samples": samples, "normalize": normalize,
        **loading.to_config(),
    }
    with command("export", json_output, config) as output:
        from edgepipe.cli.common import progress_bars
        from edgepipe.export import ExportConfig, export_model

        export_config = ExportConfig(
            formats=tuple(config["formats"]), opset=opset, dynamic_batch=dynamic_batch,
            simplify=simplify, nhwc=nhwc, fp16=fp16, atol=atol, batch=batch, seed=seed,
            threads=threads, name=name)
        with progress_bars() as progress:
            result = export_model(loading.load(model), out, export_config, data=data,
                                  samples=samples, normalize=normalize, progress=progress)
        document = result.to_dict()
        output.result(document, render=lambda console: _render(console, document))


def _render(console: Console, document: dict[str, Any]) -> None:
    table = Table(show_edge=False, title_justify="left")
    for column in ("artifact", "format", "precision", "size", "export", "max|diff|", "SQNR",
                   "top-1"):
        table.add_column(column)
    for artifact in document["artifacts"]:
        worst = max(artifact["parity"]["outputs"], key=lambda o: o["max_abs_diff"] or 0.0)
        sqnr = worst["sqnr_db"]
        top1 = worst["top1_agreement"]
        table.add_row(
            artifact["name"], artifact["format"], artifact["precision"],
            format_bytes(artifact["size_bytes"]), f"{artifact['metrics']['export_seconds']:.1f} s",
            f"{worst['max_abs_diff']:.2g}", "identical" if sqnr is None else f"{sqnr:.0f} dB",
            "" if top1 is None else f"{top1:.0%}")
    console.print(table)
    for artifact in document["artifacts"]:
        if "delegation" in artifact.get("tool", {}):
            console.print(_delegation_line(artifact["name"], artifact["tool"]["delegation"]))
    names = ", ".join(a["name"] for a in document["artifacts"])
    console.print(f"Exported {names} to {document['out']}; each matched the reference in its "
                  "runtime.")



def _delegation_line(name: str, split: dict[str, Any]) -> str:
    """``m.pte: XNNPACK runs 183 of 201 ops (1 delegate); portable kernels: op x18``."""
    total = split["delegated_ops"] + split["portable_ops"]
    backend = split["backend"].removesuffix("Backend").upper()
    line = (f"{name}: {backend} runs {split['delegated_ops']} of {total} ops "
            f"({split['delegates']} delegate{'s' if split['delegates'] != 1 else ''})")
    if split["portable"]:
        line += "; portable kernels: " + ", ".join(f"{op} x{count}"
                                                   for op, count in split["portable"].items())
    return line
