"""``edgepipe run RECIPE -o OUT``: the whole chain from a recipe, ending in a report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from edgepipe.cli.common import JsonOption, command, escape, progress_bars, state, stderr
from edgepipe.errors import PARTIAL_EXIT

if TYPE_CHECKING:
    from edgepipe.pipeline.context import StepEvent


def run_recipe_cmd(
    recipe: Annotated[Path, typer.Argument(help="The recipe (YAML): model, data, variants, "
                                           "targets, budget; see examples/quickstart.yaml.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Run directory: artifacts, "
                                      "profiles, the step cache and the report.")],
    json_output: JsonOption = False,
) -> None:
    """Build every variant of the recipe, measure accuracy on each artifact, profile each on
    every target (measured where reachable, estimated and labelled where not) and write
    OUT/report.json, report.md and report.html. Steps whose inputs did not change since the
    last run in OUT are reused; an interrupted run resumes where it stopped."""
    config = {"recipe": str(recipe), "out": str(out)}
    with command("run", json_output, config) as output:
        from edgepipe.pipeline.recipe import load_recipe
        from edgepipe.pipeline.run import run_recipe
        from edgepipe.rundir import RunDir

        loaded = load_recipe(recipe)
        RunDir(out, create=False)  # an -o that is a file fails here, before any work
        with progress_bars() as progress:
            report = run_recipe(loaded, out, events=_step_line, recipe_path=str(recipe),
                                progress=progress).to_dict()
        summary = report["summary"]
        output.result({"out": str(out), "report": {
            "json": str(out / "report.json"), "html": str(out / "report.html"),
            "markdown": str(out / "report.md")}, **report},
            render=lambda console: _render(console, report, out),
            ok=not (summary["failed"] or summary["over_budget"] or summary["failed_formats"]))
        for variant in report["variants"]:
            budget = variant.get("budget")
            if budget and not budget["within"]:
                stderr.print(f"[red]✗[/] {escape(variant['name'])} loses {budget['drop']:.2f} "
                             f"top-1 points against the float model, over the budget of "
                             f"{budget['max_drop']:g} (budget.max_drop)", highlight=False)
        if summary["failed"]:
            stderr.print(f"[bold red]{len(summary['failed'])} variant(s) failed:[/] "
                         f"{escape(', '.join(summary['failed']))} (see the report)")
        if summary["failed_formats"]:
            stderr.print(f"[bold red]{len(summary['failed_formats'])} format(s) failed[/] "
                         f"(the variants' other formats were made): "
                         f"{escape(', '.join(summary['failed_formats']))} (see the report)")
        if summary["failed"] or summary["over_budget"] or summary["failed_formats"]:
            raise typer.Exit(PARTIAL_EXIT)


def _step_line(event: StepEvent) -> None:
    """One summary line per finished step on stderr (with -q, the failed ones only); the
    progress bar (``recipe``, variants done) says which step runs."""
    if event.event == "start" or (event.status == "ok" and state.quiet):
        return
    if event.status != "ok":
        message = str((event.error or {}).get("message", ""))
        line = f"[red]✗[/] {event.kind} {escape(event.label)}: {escape(message)}"
    elif event.cached:
        line = f"[dim]· {event.kind} {escape(event.label)}: unchanged, reused[/]"
    else:
        line = f"[green]✓[/] {event.kind} {escape(event.label)}{_summary(event)} " \
               f"[dim]({event.seconds:.1f} s)[/]"
    stderr.print(line, highlight=False)


def _summary(event: StepEvent) -> str:
    from edgepipe.pipeline.report import fmt_bytes, fmt_seconds

    result: Any = event.result or {}
    if event.kind == "build":
        parts = []
        for artifact in result["artifacts"]:
            accuracy = (artifact.get("accuracy") or {}).get("value")
            parts.append(f"{artifact['name']} {fmt_bytes(artifact['size_bytes'])}"
                         + ("" if accuracy is None else f" {100 * accuracy:.2f}%"))
        return ": " + ", ".join(parts)
    if event.kind == "plan":
        best = min(result["options"], key=lambda o: o["end_to_end_s"])
        split = next((o for o in result["options"] if o["option"].endswith("(bottleneck)")),
                     None)
        return (f" at {result['link']['bandwidth_bps'] / 1e6:g} Mbps: "
                + (f"the split {fmt_seconds(split['end_to_end_s'])}, " if split else "")
                + f"best {best['option']} {fmt_seconds(best['end_to_end_s'])} "
                + f"({result['label']})")
    fit = "" if result["fit"]["fits"] else ", does not fit"
    return f": {fmt_seconds(result['latency_s'])} {result['latency_label']}{fit}"


def _render(console: Console, report: dict[str, Any], out: Path) -> None:
    summary = report["summary"]
    console.print(f"{summary['variants']} variants, {summary['steps_run']} steps run, "
                  f"{summary['steps_cached']} reused")
    for target in report["targets"]:
        pick = report["recommendations"][target["name"]]
        console.print(f"[bold]{escape(target['name'])}[/]: {escape(pick['reason'])}",
                      highlight=False)
    console.print(f"report: {out / 'report.html'} (and report.json, report.md)",
                  highlight=False)
