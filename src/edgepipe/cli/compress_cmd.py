"""``edgepipe compress MODEL --method M [--data D] -o OUT``: a thin shell over ``compress``."""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from edgepipe.cli.common import (
    NO_OPTIONS,
    ArtifactNameOption,
    DataOption,
    JsonOption,
    ModelArgument,
    ModelLoading,
    NormalizeOption,
    OutOption,
    command,
    format_bytes,
    stderr,
    takes_model,
)
from edgepipe.cli.export_cmd import Format
from edgepipe.cli.lowrank_view import render_lowrank
from edgepipe.compress.config import CALIBRATIONS, method_names
from edgepipe.errors import EdgepipeError

if TYPE_CHECKING:
    from edgepipe.compress.budget import BudgetOutcome
    from edgepipe.compress.results import CompressedArtifact, CompressResult
    from edgepipe.compress.sensitivity import SensitivityTable

# --method's choices: the registered methods (edgepipe.compress.METHODS)
Method = StrEnum("Method", {name.replace("-", "_"): name  # type: ignore[misc]
                            for name in method_names()})


class RankSelection(StrEnum):
    """How lowrank picks each layer's rank."""

    energy = "energy"
    ratio = "ratio"
    sensitivity = "sensitivity"


class RankTarget(StrEnum):
    """What --ratio counts."""

    params = "params"
    macs = "macs"


# How static int8 sets activation ranges from the calibration samples
Calibration = StrEnum("Calibration", {name: name for name in CALIBRATIONS})  # type: ignore[misc]


# --help panels: the options of each method, apart
INT8 = "int8 and int8-dynamic"
LOWBIT = "wNaM low-bit (w8a8, w4a8, w2a8)"
TRAINING = "Training (wNaM --qat, binary, lowrank)"
LOWRANK = "lowrank"
BINARY = "binary"
INT4 = "int4-weight"


@takes_model
def compress(
    model: ModelArgument,
    method: Annotated[Method, typer.Option("--method", "-m", help="Compression method.")],
    out: OutOption,
    name: ArtifactNameOption = None,
    data: DataOption = None,
    formats: Annotated[list[Format] | None, typer.Option(
        "--format", "-f", help="Format to write (repeat for several). Default: onnx.")] = None,
    calibration: Annotated[Calibration | None, typer.Option(
        help="Activation ranges from minmax, percentile or entropy (default minmax).", rich_help_panel=INT8)
    ] = None,
    calib_size: Annotated[int | None, typer.Option(
        help="Calibration samples, drawn from the training part of --data (default "
        "256).", rich_help_panel=INT8)] = None,
    per_channel: Annotated[bool | None, typer.Option(
        "--per-channel/--per-tensor", help="One weight scale per output channel "
        "(default) or one per tensor.", rich_help_panel=INT8)] = None,
    reduce_range: Annotated[bool | None, typer.Option(
        "--reduce-range/--no-reduce-range", help="7-bit weights, which x86 CPUs "
        "without VNNI need to avoid overflow (default on for int8, off for int8-dynamic).", rich_help_panel=INT8)
    ] = None,
    exclude: Annotated[list[str] | None, typer.Option(
        help="A node (layer) to keep in float; repeat for several.", rich_help_panel=INT8)] = None,
    weight_bits: Annotated[int | None, typer.Option(
        help="Weight bits per channel (2-8), overriding the method's N.", rich_help_panel=LOWBIT)] = None,
    qat: Annotated[bool | None, typer.Option(
        "--qat/--ptq", help="Fine-tune with distillation from the float model on the "
        "train split (quantization-aware), or post-training only (default).", rich_help_panel=LOWBIT)] = None,
    epochs: Annotated[int | None, typer.Option(
        help="wNaM with --qat, binary: most training epochs (default 10 for wNaM, 60 for "
        "binary; early stopping); lowrank: fine-tuning epochs after factorizing (default 0: "
        "none).", rich_help_panel=TRAINING)] = None,
    ratio: Annotated[float | None, typer.Option(
        help="Keep at most this fraction of the model's parameters (or MACs, with "
        "--rank-target macs), in (0, 1]; the default selection, at 0.5.", rich_help_panel=LOWRANK)] = None,
    energy: Annotated[float | None, typer.Option(
        help="Keep this share of each layer's squared singular values, in (0, 1].", rich_help_panel=LOWRANK)
    ] = None,
    rank_target: Annotated[RankTarget | None, typer.Option(
        help="What --ratio counts (default params).", rich_help_panel=LOWRANK)] = None,
    rank_selection: Annotated[RankSelection | None, typer.Option(
        help="Ranks by energy, by ratio, or per layer by sensitivity (the drop with "
        "only that layer factorized, on the calibration split).", rich_help_panel=LOWRANK)] = None,
    latency_check: Annotated[bool | None, typer.Option(
        "--latency-check/--no-latency-check", help="Time each factorized layer "
        "against the original in ONNX Runtime and keep it whole if not faster (default on).", rich_help_panel=LOWRANK)
    ] = None,
    activation_aware: Annotated[bool | None, typer.Option(
        "--activation-aware/--plain-svd", help="SVD basis of Linear / 1x1 layers "
        "from calibration activations (default) or from the weights alone.", rich_help_panel=LOWRANK)] = None,
    binary_activations: Annotated[bool | None, typer.Option(
        "--binary-activations/--no-binary-activations", help="Sign activations with "
        "real-valued shortcuts (Bi-Real, default), or binary weights only.", rich_help_panel=BINARY)] = None,
    first_last_bits: Annotated[str | None, typer.Option(
        help="Bits of the first and last layers (2-8, default 8), or 'none' to "
        "binarize them too.", rich_help_panel=BINARY)] = None,
    group_size: Annotated[int | None, typer.Option(
        help="Input features sharing one scale, a power of two (default: onnx, openvino "
        "128; tflite, executorch 32).", rich_help_panel=INT4)] = None,
    symmetric: Annotated[bool | None, typer.Option(
        "--symmetric/--asymmetric", help="Signed 4-bit weights (default), or unsigned "
        "with a zero point per group.", rich_help_panel=INT4)] = None,
    data_aware: Annotated[bool | None, typer.Option(
        "--data-aware/--data-free", help="The runtime's data-aware algorithm on --data "
        "(GPTQ; OpenVINO: AWQ + scale estimation; none for executorch), or round to "
        "nearest (default).",
        rich_help_panel=INT4)] = None,
    keep_8bit: Annotated[bool | None, typer.Option(
        "--keep-8bit/--all-4bit", help="Output head (and embeddings: onnx, openvino) in "
        "8 bits, or every layer in 4 (default: each tool's own choice).", rich_help_panel=INT4)] = None,
    allow_random_calibration: Annotated[bool, typer.Option(
        "--allow-random-calibration", help="Without --data: calibrate on random N(0,1) "
        "inputs (activation ranges will not match real data).", rich_help_panel=INT8)] = False,
    sensitivity: Annotated[bool, typer.Option(
        "--sensitivity", help="Quantize one layer at a time, print the ranked drops and "
        "save them as sensitivity.json in OUT (int8 on onnx; int4-weight on onnx and "
        "openvino).", rich_help_panel=INT8)] = False,
    max_drop: Annotated[float | None, typer.Option(
        min=0.0, help="Largest drop allowed (top-1 points with labels, cosine points "
        "without); the most sensitive layers stay in float (int8) or 8 bits (int4-weight) "
        "until it is met, else exit 1 "
        "keeping the best artifact as *.over-budget.*.", rich_help_panel=INT8)] = None,
    seed: Annotated[int, typer.Option(help="Seed of the data split and random inputs.")] = 0,
    threads: Annotated[int | None, typer.Option(
        help="Runtime threads for checks and metrics (default: every usable core).")] = None,
    normalize: NormalizeOption = None,
    loading: ModelLoading = NO_OPTIONS,
    json_output: JsonOption = False,
) -> None:
    """Compress MODEL (int8, int8-dynamic, fp16, int4-weight, wNaM low-bit, lowrank, binary); each
    artifact and its float counterpart are measured on the eval split of --data and recorded
    with the drop in manifest.json."""
    options: dict[str, Any] = {
        "formats": [f.value for f in formats or [Format.onnx]], "seed": seed, "name": name,
        "calibration": calibration.value if calibration else None, "calib_size": calib_size,
        "per_channel": per_channel, "reduce_range": reduce_range, "exclude": exclude,
        "allow_random_calibration": allow_random_calibration or None,
        "weight_bits": weight_bits, "qat": qat, "epochs": epochs, "ratio": ratio,
        "energy": energy, "target": rank_target.value if rank_target else None,
        "rank_selection": rank_selection.value if rank_selection else None,
        "latency_check": latency_check, "activation_aware": activation_aware,
        "binary_activations": binary_activations, "group_size": group_size,
        "symmetric": symmetric, "data_aware": data_aware, "keep_8bit": keep_8bit,
    }
    options = {k: v for k, v in options.items() if v is not None}
    if first_last_bits is not None:
        options["first_last_bits"] = _bits_or_none(first_last_bits)
    config = {"model": model, "method": method.value, "out": str(out), "data": data,
              **options, "threads": threads, "normalize": normalize,
              **loading.to_config(), "sensitivity": sensitivity, "max_drop": max_drop}
    with command("compress", json_output, config) as output:
        from edgepipe.cli.common import progress_bars
        from edgepipe.compress.api import compress as compress_model
        from edgepipe.compress.budget import AccuracyBudget
        from edgepipe.compress.config import make_config

        compress_config = make_config(method.value, **options)
        budget = AccuracyBudget(max_drop, sensitivity)
        try:  # the verb checks OUT, then loads the model and the data, splits and measures
            with progress_bars() as progress:
                result = compress_model(functools.partial(loading.load, model),
                                        compress_config, out, data, threads=threads,
                                        budget=budget, normalize=normalize, progress=progress)
        except EdgepipeError as exc:  # some formats made, others failed: show what was made
            made = getattr(exc, "result", None)
            if made is not None and made.artifacts and not json_output:
                _render(stderr, made)
            raise
        output.result(result.to_dict(), render=lambda console: _render(console, result))


def _bits_or_none(text: str) -> int | str | None:
    """``--first-last-bits``: an integer, or none; other text goes to the config's check."""
    value = text.strip().lower()
    if value in ("none", "binary", "1"):
        return None
    return int(value) if value.lstrip("-").isdigit() else text


def _render(console: Console, result: CompressResult) -> None:
    table = Table(show_edge=False, title_justify="left")
    for column in ("artifact", "precision", "size (vs float)", "metric", "float", "drop", "SQNR vs source",
                   "left in float"):
        table.add_column(column, no_wrap=column in ("artifact", "size (vs float)"))
    for artifact in result.artifacts:
        metrics = artifact.metrics
        float_size = result.float_artifact(artifact.tool.source_artifact).size_bytes
        sqnr = [o.sqnr_db for o in metrics.eval.outputs]
        table.add_row(
            artifact.name, artifact.precision,
            f"{format_bytes(artifact.size_bytes)} (1/{float_size / artifact.size_bytes:.1f})",
            format_metric(metrics.metric, metrics.value),
            format_metric(metrics.metric, metrics.float_value),
            "" if metrics.drop is None else f"{100 * metrics.drop:.2f} pts",
            ", ".join("identical" if s is None else f"{s:.1f} dB" for s in sqnr),
            str(len(artifact.tool.left_in_float) or ""))
    console.print(table)
    data, calibration = result.data, result.calibration()
    assert data is not None  # a finished run always says what it measured on
    line = (f"Compressed to {result.method}: {len(result.artifacts)} artifact(s) in "
            f"{result.out}; measured on {data.samples} samples ({data.part}, {data.source})")
    if calibration:
        line += f"; calibrated on {calibration.samples} samples ({calibration.method})"
    console.print(line + ". The drop is against the float artifact of the same format.")
    for fmt, ranked in (result.sensitivity or {}).items():
        console.print(sensitivity_table(fmt, ranked))
    for fmt, outcome in (result.budget or {}).items():
        if outcome.max_drop is not None:
            console.print(budget_line(fmt, outcome))
    for artifact in result.artifacts:
        _render_int4(console, artifact)
        _render_packed(console, artifact)
        render_lowrank(console, artifact)
        _render_binary(console, artifact)


def _render_int4(console: Console, artifact: CompressedArtifact) -> None:
    """int4-weight: one line per artifact, e.g. ``m.int4-weight.onnx: 2 layers int4
    (group 128), 1 int8, 0 float``."""
    counts = artifact.tool.weight_layers
    if counts is None:
        return
    group = artifact.tool.backend.get("group_size")
    console.print(f"{artifact.name}: {counts.int4} layer(s) int4 (group {group}), "
                  f"{counts.int8} int8, {counts.kept_float} float")


def _render_packed(console: Console, artifact: CompressedArtifact) -> None:
    """Low-bit: the file keeps int8 weights; say so beside the packed size (computed)."""
    sizes = artifact.tool.sizes
    if sizes and sizes.packing_would_help:
        console.print(f"{artifact.name}: QCDQ stores the low-bit weights as int8, so the "
                      f"file is {format_bytes(sizes.file_bytes)}; packed at their bit width the "
                      f"quantized layers would take {format_bytes(sizes.packed_bytes_computed)} "
                      f"(computed; {format_bytes(sizes.int8_bytes_computed)} at 8 bits).")


def _render_binary(console: Console, artifact: CompressedArtifact) -> None:
    """Binary: packed size, operations and latency, each labelled."""
    binary = artifact.tool.binary
    if binary is None:
        return
    sizes, ops, lat = binary.storage, binary.operations, binary.latency
    console.print(
        f"{artifact.name}: packed weights {sizes.packed_file} "
        f"{format_bytes(sizes.packed_file_bytes)} (measured) vs "
        f"{format_bytes(sizes.float_bytes)} float32 weights (computed): "
        f"{sizes.whole_model_ratio}x smaller; binarized layers "
        f"{sizes.binary_layers_ratio}x smaller. {ops.binary_ops_xnor_popcount:,} "
        f"XNOR-popcount ops + {ops.binary_weight_signed_adds:,} signed adds + "
        f"{ops.int8_macs:,} int8 MACs vs {ops.float_macs:,} float MACs (computed). "
        f"ONNX Runtime p50 latency (measured, {lat.threads} threads): float "
        f"{lat.results['float'].p50_us:.0f} us, binary {lat.results['binary'].p50_us:.0f} us. "
        f"{lat.note}")
    training = binary.training
    console.print(f"Training: {training.loss}, {training.epochs_run} epoch(s), best "
                  f"epoch {training.best_epoch}, {training.seconds:.1f} s.")


def sensitivity_table(fmt: str, table: SensitivityTable) -> Table:
    """The per-layer drops, most sensitive first."""
    from edgepipe.compress.sensitivity import in_words

    unit = "pts" if table.metric == "top1" else "cos pts"
    view = Table(show_edge=False, title_justify="left", title=(
        f"Per-layer sensitivity ({fmt}): one layer in {in_words(table.precision)}, the rest "
        f"in {in_words(table.backup)}; drop in "
        f"{table.unit}; {table.samples} samples, {round(table.seconds, 3):.1f} s"))
    for column in ("rank", "layer", "op", "drop", "metric", "SQNR vs source"):
        view.add_column(column, justify="right" if column in ("rank", "drop") else "left")
    for rank, row in enumerate(table.layers, start=1):
        metric = (format_metric("top1", row.value) if table.metric == "top1"
                  else f"cos {row.value:.6f}")
        view.add_row(str(rank), row.layer, row.op, f"{row.drop:.3f} {unit}",
                     metric, format_metric("sqnr_db", row.sqnr_db))
    return view


def budget_line(fmt: str, budget: BudgetOutcome) -> str:
    """``Budget --max-drop 0.5 met: 5.571 -> 0.000 pts; kept in float: a, b``."""
    from edgepipe.compress.sensitivity import in_words

    path = " -> ".join(f"{step.drop:.3f}" for step in budget.steps)
    kept = ", ".join(budget.kept) or "none"
    state = "met" if budget.met else "NOT met"
    assert budget.max_drop is not None
    return (f"Budget --max-drop {budget.max_drop:g} ({fmt}) {state} by {budget.artifact}: "
            f"drop {path} {budget.steps[0].metric} points; kept in {in_words(budget.backup_precision)}: {kept}.")


def format_metric(metric: str, value: float | None) -> str:
    """``98.33%`` for top-1, ``41.2 dB`` for SQNR, ``identical`` for infinite SQNR."""
    if value is None:
        return "identical" if metric == "sqnr_db" else ""
    return f"{100 * value:.2f}%" if metric == "top1" else f"{value:.1f} dB"
