"""``edgepipe profile ARTIFACT --target T``: latency, memory and energy, each figure labelled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from edgepipe.cli.common import (
    DataOption,
    JsonOption,
    NormalizeOption,
    TrustPickleOption,
    command,
    format_bytes,
)
from edgepipe.cli.targets_cmd import CatalogOption
from edgepipe.formats import describe_artifacts

# --help panels
TIMING = "Timing"
ENERGY = "Energy"
DEVICE = "On a device (ssh:// or adb://)"


def profile(
    artifact: Annotated[str, typer.Argument(help=f"Artifact: {describe_artifacts()}.")],
    target: Annotated[str, typer.Option(help="Catalog target (`edgepipe targets list`); "
                                        "host measures here, others are estimated.")] = "host",
    runs: Annotated[int, typer.Option(
        help="Timed runs (at least; see --duration).", rich_help_panel=TIMING)] = 100,
    duration: Annotated[float, typer.Option(
        help="Seconds of steady state (at least): timing ends when "
        "both --runs and --duration are reached.", rich_help_panel=TIMING)] = 3.0,
    warmup: Annotated[int, typer.Option(
        help="Warm-up runs before timing (at least 0.5 s).", rich_help_panel=TIMING)] = 10,
    threads: Annotated[int | None, typer.Option(
        help="Runtime threads (default: every usable core).", rich_help_panel=TIMING)] = None,
    cpus: Annotated[str | None, typer.Option(
        help="Pin the profiling process to these CPUs, e.g. 0,1 or 2-3 "
        "(Linux).", rich_help_panel=TIMING)] = None,
    batch: Annotated[int, typer.Option(
        "--batch-size", help="Batch size of the input.", rich_help_panel=TIMING)] = 1,
    precision: Annotated[str, typer.Option(
        help="fp16 casts a torch program (.pt2) to half precision as "
        "it loads (for --target cuda); other artifacts run in the precision they were "
        "exported in.", rich_help_panel=TIMING)] = "fp32",
    sequence_length: Annotated[int | None, typer.Option(
        help="Tokens per input of a text encoder exported with a dynamic sequence (default: "
        "the length it was exported at).", rich_help_panel=TIMING)] = None,
    data: DataOption = None,
    normalize: NormalizeOption = None,
    seed: Annotated[int, typer.Option(help="Seed of the random input (without --data).")] = 0,
    per_layer: Annotated[bool, typer.Option(
        "--per-layer/--no-per-layer", help="Per-layer times where the runtime exposes them.", rich_help_panel=TIMING)
    ] = True,
    energy: Annotated[bool, typer.Option(
        "--energy/--no-energy", help="Measure energy where a sensor is readable.", rich_help_panel=ENERGY)] = True,
    energy_window: Annotated[float, typer.Option(
        help="Seconds of steady inference for the energy measurement (after as many of "
        "idle).", rich_help_panel=ENERGY)] = 3.0,
    host: Annotated[str | None, typer.Option(
        "--remote", help="Profile on a device: ssh://user@host[:port] (the system's "
        "OpenSSH: ~/.ssh/config, agents and jump hosts apply) or adb://SERIAL (a phone).",
        rich_help_panel=DEVICE)] = None,
    benchmark_model: Annotated[Path | None, typer.Option(
        help="With adb://: TFLite's Android benchmark_model binary to run the .tflite "
        "(else the agent runs with --remote-python on the phone).", rich_help_panel=DEVICE)] = None,
    identity: Annotated[Path | None, typer.Option(
        help="SSH private key for --remote (ssh -i).", rich_help_panel=DEVICE)] = None,
    ssh_config: Annotated[Path | None, typer.Option(
        help="SSH client config file for --remote (ssh -F).", rich_help_panel=DEVICE)] = None,
    remote_python: Annotated[str, typer.Option(
        help="Python on the device, with numpy and the runtime (e.g. ~/venv/bin/python).", rich_help_panel=DEVICE)
    ] = "python3",
    top: Annotated[int, typer.Option(help="Slowest layers to show.", rich_help_panel=TIMING)] = 10,
    save: Annotated[Path | None, typer.Option(
        "--save", help="Also write the profile JSON to this file.")] = None,
    trust_pickle: TrustPickleOption = False,
    catalog_dir: CatalogOption = None,
    json_output: JsonOption = False,
) -> None:
    """Latency (load, first run, warm-up, steady state with percentiles and raw times),
    per-layer times, memory and energy of an artifact on a target: measured on this
    machine (`host`), estimated and labelled so for devices not reached."""
    config = {"artifact": artifact, "target": target, "runs": runs, "duration": duration,
              "warmup": warmup, "threads": threads, "cpus": cpus, "batch_size": batch,
              "sequence_length": sequence_length,
              "data": data, "seed": seed, "per_layer": per_layer, "energy": energy,
              "energy_window": energy_window, "precision": precision, "remote": host, "identity": identity,
              "ssh_config": ssh_config, "remote_python": remote_python,
              "benchmark_model": benchmark_model, "catalog": catalog_dir}
    with command("profile", json_output, config) as output:
        from edgepipe.devices.catalog import get_target
        from edgepipe.profiling.profile import check_cpus_option, profile_artifact, settings_for
        from edgepipe.rundir import atomic_write_json

        pinned = check_cpus_option(cpus, batch, host)
        if save is not None:
            check_writable(save)  # before measuring: a profile is minutes of work
        settings = settings_for(runs=runs, duration=duration, warmup=warmup, threads=threads,
                                cpus=pinned, per_layer=per_layer, energy=energy,
                                energy_window=energy_window, precision=precision)
        entry = get_target(target, user=catalog_dir)  # bundled or the user's catalog
        from edgepipe.cli.common import progress_bars
        from edgepipe.progress import reporting

        with progress_bars() as progress, reporting(progress):
            document = profile_artifact(artifact, entry, settings, data=data, batch=batch,
                                        seed=seed, normalize=normalize, host=host,
                                        benchmark_model=benchmark_model, identity=identity,
                                        ssh_config=ssh_config, remote_python=remote_python,
                                        trust_pickle=trust_pickle,
                                        sequence_length=sequence_length).to_dict()
        if save is not None:
            try:
                atomic_write_json(save, document)
            except OSError as exc:  # checked before measuring, so it changed (or a full disk)
                if not json_output:
                    print(json.dumps(document, indent=2))
                where = ("in the error's details.profile on stdout" if json_output else
                         "to stdout instead, as JSON")
                from edgepipe.errors import InputError

                raise InputError(
                    f"Cannot write the profile to '{save}': {exc.strerror or exc}. The "
                    f"measured profile is not lost: it was printed {where}.",
                    hint="keep that output, or give --save a path on a disk with space that "
                    "you can write to.", reference="save-failed",
                    details={"profile": document}) from exc
        output.result(document, render=lambda console: render(console, document, top))


def check_writable(path: Path) -> None:
    """Raise unless a file can be created at ``path`` (its folder exists and is writable)."""
    import os

    from edgepipe.errors import InputError

    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError(f"--save {path} is a folder; it takes a file name.",
                         hint=f"give e.g. --save {path / 'profile.json'}.",
                         reference="save-not-writable")
    if not folder.is_dir():
        raise InputError(f"--save {path}: the folder '{folder}' does not exist, so the profile "
                         "could not be written after measuring; nothing was measured.",
                         hint=f"create it first (mkdir -p {folder}) or pick another path.",
                         reference="save-not-writable")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists()
                                                   and not os.access(path, os.W_OK)):
        raise InputError(f"--save {path}: '{path if path.exists() else folder}' is not "
                         "writable; nothing was measured.",
                         hint="pick a path you can write to.", reference="save-not-writable")


def _ms(seconds: float | None, unit: bool = True) -> str:
    if seconds is None:
        return ""
    return f"{seconds * 1e3:.3f}" + (" ms" if unit else "")


def render(console: Console, doc: dict[str, Any], top: int) -> None:
    latency = doc["latency"]
    artifact = doc["artifact"]
    where = (f", over {doc['device']['via']} to {doc['device']['destination']}"
             if doc.get("device") else "")
    console.print(f"[bold]{Path(artifact['path']).name}[/] on [bold]{doc['target']['name']}"
                  f"[/] ({artifact['runtime']}, {doc['mode']}{where})")
    if doc["mode"] == "estimated":
        console.print(f"latency p50 {_ms(latency['steady']['p50_s'])} "
                      f"[yellow]estimated[/]: {latency['model']}")
        error = latency["calibration"]["error"]
        if error:
            console.print(f"estimator error on the host: {error['summary']}")
        if latency["calibration"]["note"]:
            console.print(latency["calibration"]["note"])
    else:
        steady = latency["steady"]
        table = Table(title="latency in ms (measured)", show_edge=False, title_justify="left")
        for column in ("load", "first", "count", "mean", "std", "min", "p50", "p90", "p99",
                       "max"):
            table.add_column(column, justify="right")
        table.add_row(_ms(latency["load_s"], False), _ms(latency["first_inference_s"], False),
                      str(steady["count"]), *[_ms(steady.get(k), False) for k in (
                          "mean_s", "std_s", "min_s", "p50_s", "p90_s", "p99_s", "max_s")])
        console.print(table)
        if "runtime_reported" in latency:
            console.print(f"runtime's own timer: p50 "
                          f"{_ms(latency['runtime_reported']['p50_s'])} "
                          f"({latency['runtime_reported']['clock']})")
        if doc.get("inputs"):
            console.print(f"input: {doc['inputs']['description']}")
        if steady.get("note"):
            console.print(steady["note"])
        for warning in (doc.get("device_state") or {}).get("warnings", []):
            console.print(f"[yellow]warning:[/] {warning}; throttling makes runs disagree")
        _render_layers(console, doc.get("layers"), top)
    memory = doc["memory"]
    parts = [f"artifact {format_bytes(memory['artifact_size_bytes']['value'])}"]
    if memory.get("peak_rss_increase_bytes", {}).get("value"):
        parts.append(f"peak RSS {format_bytes(memory['peak_rss_bytes']['value'])} "
                     f"(+{format_bytes(memory['peak_rss_increase_bytes']['value'])} over the "
                     "runtime's imports, measured)")
    peak = memory["peak_activation_bytes"]
    if peak["value"] is not None:
        parts.append(f"peak activations {format_bytes(peak['value'])} (estimated from the graph)")
    console.print("memory: " + "; ".join(parts))
    energy_doc = doc["energy"]
    if energy_doc["label"] == "measured":
        console.print(f"energy: {energy_doc['joules_per_inference'] * 1e3:.3f} mJ/inference "
                      f"(measured by {energy_doc['sensor']['name']} ({energy_doc['sensor']['source']}): "
                      f"idle {energy_doc['idle_w']:.2f} W, busy {energy_doc['busy_w']:.2f} W over "
                      f"{energy_doc['window_s']:.1f} s, {energy_doc['inferences']} inferences)")
        if energy_doc.get("warning"):
            console.print(f"[yellow]warning:[/] {energy_doc['warning']}")
    elif energy_doc.get("joules_per_inference") is not None:
        console.print(f"energy: {energy_doc['joules_per_inference'] * 1e3:.3f} mJ/inference "
                      f"([yellow]estimated[/]: {energy_doc['model']})")
        if energy_doc.get("not_measured_because"):
            console.print(f"not measured: {energy_doc['not_measured_because']}")
    elif energy_doc["label"] != "not-requested":
        console.print(f"energy: unavailable ({energy_doc.get('why')})")


def _render_layers(console: Console, layers: dict[str, Any] | None, top: int) -> None:
    if not layers:
        return
    if not layers.get("rows"):
        console.print(f"per-layer: {layers.get('note')}")
        return
    table = Table(title=f"slowest layers ({layers['source']})", show_edge=False,
                  title_justify="left")
    kernels = any("exec_type" in row for row in layers["rows"])
    columns = ("layer", "op", *(("kernel",) if kernels else ()), "time", "share")
    for column in columns:
        table.add_column(column, justify="right" if column in ("time", "share") else "left")
    for row in layers["rows"][:top]:
        time_us = row["median_us"] if row["median_us"] is not None else row["mean_us"]
        table.add_row(row["name"][:60], row["op_type"],
                      *((str(row.get("exec_type", "")),) if kernels else ()),
                      f"{time_us:.1f} us", f"{100 * row['share']:.1f}%")
    console.print(table)
    if kernels:  # where the time went, by kernel (ExecuTorch: delegated or portable)
        shares: dict[str, list[float]] = {}
        for row in layers["rows"]:
            entry = shares.setdefault(str(row.get("exec_type", "")), [0, 0.0])
            entry[0] += 1
            entry[1] += row["share"]
        console.print("by kernel: " + "; ".join(
            f"{kind} {count} op(s), {100 * share:.1f}% of the time"
            for kind, (count, share) in sorted(shares.items(), key=lambda kv: -kv[1][1])))
