"""``edgepipe eval ARTIFACT --data D``: the metric of an artifact, in its own runtime."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from edgepipe.cli.common import JsonOption, NormalizeOption, TrustPickleOption, command
from edgepipe.cli.compress_cmd import format_metric
from edgepipe.formats import describe_artifacts


class Part(StrEnum):
    """Which samples of --data to measure on."""

    eval = "eval"
    all = "all"


def eval_artifact(
    artifact: Annotated[str, typer.Argument(help=f"Artifact: {describe_artifacts()}.")],
    data: Annotated[str, typer.Option(
        "--data", help="DATA spec: data.npz, a folder of class sub-folders of images, "
        "builtin:digits, or texts.txt / texts.tsv for an artifact made from an hf:FOLDER "
        "text model (tokenized as its manifest.json records).")],
    reference: Annotated[str | None, typer.Option(
        help="MODEL spec or artifact to compare outputs with (SQNR, cosine similarity); "
        "needed when the data has no labels.")] = None,
    reference_weights: Annotated[Path | None, typer.Option(
        help="State dict for a --reference MODEL spec: .pt/.pth (weights only) or "
        ".safetensors.")] = None,
    part: Annotated[Part, typer.Option(
        "--subset", help="eval: the seeded held-out split that compress measures on; all: "
        "every sample (a dedicated test set).")] = Part.eval,
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    threads: Annotated[int | None, typer.Option(
        help="Runtime threads (default: every usable core).")] = None,
    batch_size: Annotated[int, typer.Option(
        help="Batch for artifacts with a dynamic batch (a fixed batch is kept).")] = 64,
    normalize: NormalizeOption = None,
    trust_pickle: TrustPickleOption = False,
    json_output: JsonOption = False,
) -> None:
    """Top-1 on labelled data, or SQNR and cosine similarity against --reference, measured
    on the artifact itself in the runtime it is deployed with."""
    config = {"artifact": artifact, "data": data, "reference": reference,
              "reference_weights": str(reference_weights) if reference_weights else None,
              "subset": part.value,
              "seed": seed, "threads": threads, "batch_size": batch_size,
              "normalize": normalize}
    with command("eval", json_output, config) as output:
        from edgepipe.evaluate import evaluate_on_data

        result = evaluate_on_data(artifact, data, reference=reference, part=part.value,
                                  seed=seed, threads=threads, batch_size=batch_size,
                                  normalize=normalize, trust_pickle=trust_pickle,
                                  reference_weights=reference_weights)
        document = result.to_dict()
        output.result(document, render=lambda console: _render(console, document))


def _render(console: Console, document: dict[str, Any]) -> None:
    if document["outputs"]:
        table = Table(title=f"outputs against {document['reference']}", show_edge=False,
                      title_justify="left")
        for column in ("output", "SQNR", "cosine (mean / min)", "max|diff|", "top-1 agreement"):
            table.add_column(column)
        for o in document["outputs"]:
            agreement = o["top1_agreement"]
            table.add_row(o["name"], format_metric("sqnr_db", o["sqnr_db"]),
                          f"{o['cosine_mean']:.5f} / {o['cosine_min']:.5f}",
                          f"{o['max_abs_diff']:.3g}",
                          "" if agreement is None else f"{100 * agreement:.2f}%")
        console.print(table)
    data = document["data"]
    name = "top-1" if document["metric"] == "top1" else "SQNR (worst output)"
    part = (f"the eval split (seed {data['seed']}) of {data['source']}"
            if data["split"] == "eval" else data["source"])
    console.print(
        f"{name} {format_metric(document['metric'], document['value'])} on {data['samples']} "
        f"samples of {part}, in {document['runtime']} {document['runtime_version']} "
        f"({document['threads']} threads, batch {document['batch']}, "
        f"{document['seconds']:.2f} s).")
    if data.get("preprocessing"):
        from edgepipe.data.preprocessing import Preprocessing

        whence = {"manifest.json": "as the artifact's manifest.json records",
                  "--normalize": "as --normalize says",
                  "default": "the loader's default: nothing recorded beside the artifact"}
        console.print(f"prepared as {Preprocessing.from_dict(data['preprocessing']).describe()} "
                      f"({whence.get(data['preprocessing_from'], data['preprocessing_from'])}).")
