"""``edgepipe targets list | show T | check ARTIFACT T | validate PATH | add FILE``: the
device catalog (bundled, and the user's: ``--catalog DIR`` or ``$EDGEPIPE_CATALOG``), custom
targets, and MCU fit."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from edgepipe.cli.common import JsonOption, command, escape, format_bytes
from edgepipe.cli.help import HelpCommand, HelpGroup

targets_app = typer.Typer(cls=HelpGroup, help="The device catalog, your own targets, and whether a model "
                          "fits a microcontroller.", no_args_is_help=True)

CatalogOption = Annotated[Path | None, typer.Option(
    "--catalog", metavar="DIR", help="A folder of your own target YAML files, added to the "
    "bundled catalog (default: $EDGEPIPE_CATALOG).")]


def _figure(doc: dict[str, Any] | None, scale: float = 1.0, unit: str = "") -> str:
    if not doc:
        return ""
    value = doc["value"] * scale
    return f"{value:,.3g} {unit}".strip() if unit != "B" else format_bytes(int(value))


@targets_app.command("list", cls=HelpCommand)
def list_targets(catalog_dir: CatalogOption = None, json_output: JsonOption = False) -> None:
    """Every target: kind, how it is reached, runtimes, memory and peak int8 throughput."""
    with command("targets list", json_output, {"catalog": catalog_dir}) as output:
        from edgepipe.devices.catalog import load_catalog

        catalog = load_catalog(user=catalog_dir)
        rows = [t.model_dump(mode="json") for t in catalog.values()]
        output.result({"targets": rows}, render=lambda console: _render_list(console, rows))


def _render_list(console: Console, rows: list[dict[str, Any]]) -> None:
    table = Table(show_edge=False)
    # the names are what the user types: never cut; the rest wraps at word boundaries
    table.add_column("target", no_wrap=True, min_width=max((len(t["name"]) for t in rows),
                                                           default=6))
    for column in ("kind", "reach", "memory", "flash", "peak int8"):
        table.add_column(column, overflow="fold")
    table.add_column("runtimes", no_wrap=True)  # one a line
    for t in rows:
        memory = t.get("memory") or {}
        ram = memory.get("ram_bytes") or memory.get("sram_bytes")
        peak = (t.get("peak_gmacs") or {}).get("int8")
        table.add_row(t["name"], t["kind"], t["reach"], _figure(ram, unit="B"),
                      _figure(memory.get("flash_bytes"), unit="B"),
                      _figure(peak, unit="GMAC/s"),
                      "\n".join(r.split(" (")[0] for r in t["runtimes"]))  # notes: `show`
    console.print(table)
    console.print("figures are datasheet, measured, derived or assumed: "
                  "`edgepipe targets show T` gives each one's source")


@targets_app.command("show", cls=HelpCommand)
def show(target: Annotated[str, typer.Argument(help="Target name.")],
         catalog_dir: CatalogOption = None, json_output: JsonOption = False) -> None:
    """One target with every figure, its kind (datasheet, measured, derived, assumption)
    and its source."""
    with command("targets show", json_output, {"target": target, "catalog": catalog_dir}
                 ) as output:
        from edgepipe.devices.catalog import get_target

        found = get_target(target, user=catalog_dir)
        document = found.model_dump(mode="json")
        figures = [(path, f.value, f.describe()) for path, f in found.figures()]
        output.result({**document, "figures": [
            {"path": p, "value": v, "source": d} for p, v, d in figures]},
            render=lambda console: _render_show(console, document, figures))


def _render_show(console: Console, doc: dict[str, Any], figures: list) -> None:
    console.print(f"[bold]{doc['name']}[/]: {escape(doc['title'])} ({doc['kind']}, reached "
                  f"{doc['reach']}); runtimes: {', '.join(doc['runtimes'])}")
    if doc.get("cpu"):
        console.print(f"cpu: {escape(doc['cpu']['core'])}, {doc['cpu']['cores']} core(s), "
                      f"{escape(doc['cpu']['isa'])}")
    table = Table(show_edge=False)
    for column in ("figure", "value", "kind and source"):
        table.add_column(column)
    for path, value, source in figures:
        table.add_row(path, f"{value:,.6g}", escape(source))
    console.print(table)
    console.print(f"energy sensor: {doc['energy_sensor']['kind']} "
                  f"({escape(doc['energy_sensor']['note'])})")
    for key, source in doc["sources"].items():
        mark = "" if source["verified"] else " [dim](not re-verified)[/]"
        console.print(f"  [{key}] {source['url']}{mark}")


@targets_app.command("check", cls=HelpCommand)
def check(
    artifact: Annotated[str, typer.Argument(help="A .tflite model (int8 for CMSIS-NN).")],
    target: Annotated[str, typer.Argument(help="A microcontroller of the catalog.")],
    require_fit: Annotated[bool, typer.Option(
        "--require-fit", help="Exit 1 when the model does not fit.")] = False,
    catalog_dir: CatalogOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run the model in TFLite Micro on this machine: arena it really allocates (verified),
    operators against TFLite Micro's kernels, flash and SRAM against the target, and an
    estimated latency and energy."""
    config = {"artifact": artifact, "target": target, "require_fit": require_fit,
              "catalog": catalog_dir}
    with command("targets check", json_output, config) as output:
        from edgepipe.devices.catalog import get_target
        from edgepipe.devices.fit import check_fit
        from edgepipe.devices.fit import require_fit as must_fit

        result = check_fit(artifact, get_target(target, user=catalog_dir))
        if require_fit:
            must_fit(result)
        document = result.to_dict()
        output.result(document, render=lambda console: _render_check(console, document))


def _render_check(console: Console, r: dict[str, Any]) -> None:
    verdict = "[bold green]fits[/]" if r["fits"] else "[bold red]does not fit[/]"
    console.print(f"{escape(r['artifact'])} on {r['target']['name']} ({r['precision']}): "
                  f"{verdict}")
    table = Table(show_edge=False)
    for column in ("memory", "needs", "of which", "has", "margin"):
        table.add_column(column)
    for name, b, parts in (("flash", r["flash"], "model {model_bytes:,} + runtime "
                            "{runtime_bytes:,.0f}"),
                           ("SRAM", r["sram"], "arena {arena_bytes:,} + runtime "
                            "{runtime_bytes:,.0f}")):
        margin = "" if b["have_bytes"] is None else \
            f"{b['margin_bytes']:+,} B ({b['margin_pct']:+.0f}%)"
        table.add_row(name, f"{b['need_bytes']:,} B", parts.format(**b["parts"]),
                      "" if b["have_bytes"] is None else f"{b['have_bytes']:,} B", margin)
    console.print(table)
    arena = r["arena"]
    console.print(f"arena: {arena['arena_bytes']:,} B measured by TFLite Micro; "
                  f"{arena['verification']}")
    console.print(f"runtime overheads are assumptions: {escape(r['flash']['parts']['runtime_source'])}")
    ops = r["operators"]
    console.print(f"operators: {ops['count']} ({', '.join(ops['used'])}); "
                  + ("all have TFLite Micro kernels" if not ops["unsupported"] else
                     f"[red]no kernel for {', '.join(ops['unsupported'])}[/]"))
    estimate = r["estimate"]
    if estimate.get("latency_s") is not None:
        console.print(f"latency ~{estimate['latency_s'] * 1e3:.1f} ms [yellow]estimated[/]: "
                      f"{escape(estimate['model'])}")
    if estimate.get("energy"):
        console.print(f"energy ~{estimate['energy']['joules_per_inference'] * 1e3:.2f} mJ "
                      f"[yellow]estimated[/]: {escape(estimate['energy']['model'])}")
    for warning in r["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    for reason in r["reasons"]:
        console.print(f"[red]{escape(reason)}[/]")


@targets_app.command("validate", cls=HelpCommand)
def validate(
    path: Annotated[Path, typer.Argument(help="A target YAML file, or a folder of them.")],
    json_output: JsonOption = False,
) -> None:
    """Check target files against the catalog's schema (every figure with its kind and
    source) and the bundled names; exit 1 naming each problem."""
    with command("targets validate", json_output, {"path": path}) as output:
        from edgepipe.devices.catalog import validate_targets
        from edgepipe.errors import InputError

        found = validate_targets(path)
        if not found.ok:
            problems = [f"{p.file}: {p.message}" for p in found.problems]
            raise InputError(
                f"{len(problems)} of {len(found.files)} target file(s) are invalid:\n  "
                + "\n  ".join(problems),
                hint="fix each file as its line says; edgepipe/devices/schema.py lists the "
                "fields, and `edgepipe targets show rpi5` shows a valid target.",
                reference="invalid-targets", details=found.to_dict())
        document = found.to_dict()
        output.result(document, render=lambda console: console.print(
            f"{len(found.files)} target file(s) valid: {', '.join(found.targets)}"))


@targets_app.command("add", cls=HelpCommand)
def add(
    file: Annotated[Path, typer.Argument(help="A target YAML file (see `targets validate`).")],
    catalog_dir: CatalogOption = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace a user target of the same name.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Validate a target file and copy it into your catalog folder (--catalog, else
    $EDGEPIPE_CATALOG; created if missing), so every command that takes a target knows it."""
    config = {"file": file, "catalog": catalog_dir, "force": force}
    with command("targets add", json_output, config) as output:
        from edgepipe.devices.catalog import CATALOG_ENV, add_target
        from edgepipe.errors import InputError

        folder = catalog_dir if catalog_dir is not None else \
            (Path(os.environ[CATALOG_ENV]) if os.environ.get(CATALOG_ENV) else None)
        if folder is None:
            raise InputError("No user catalog folder: `targets add` copies the file into one.",
                             hint=f"pass --catalog DIR or set {CATALOG_ENV}=DIR (then every "
                             "command finds the target there).", reference="no-user-catalog")
        added = add_target(file, folder.expanduser(), force=force)
        document = added.to_dict()
        output.result(document, render=lambda console: console.print(
            f"{'replaced' if added.replaced else 'added'} target [bold]{added.name}[/] as "
            f"{escape(added.file)}"))
