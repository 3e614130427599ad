"""``edgepipe env``: backend versions, the CPU, its ISA features, threads."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from edgepipe.cli.common import JsonOption, command


def env(json_output: JsonOption = False) -> None:
    """Versions of every backend, the CPU and the ISA features that decide whether int8
    is faster than fp32, and threads."""
    from edgepipe.system import environment_report

    with command("env", json_output) as out:
        report = environment_report().to_dict()
        out.result(report, render=lambda console: _render(console, report))


def _render(console: Console, report: dict[str, Any]) -> None:
    cpu = report["cpu"]
    quota = cpu["cgroup_quota_cores"]
    console.print(f"[bold]CPU[/]      {cpu['model']} ({cpu['arch']})")
    console.print(
        f"[bold]Cores[/]    {cpu['logical_cores']} logical, {cpu['physical_cores'] or '?'} "
        f"physical, {cpu['usable_cores']} usable by this process"
        + (f" (cgroup quota {quota:g})" if quota else "")
    )
    present = [name for name, ok in cpu["features"].items() if ok]
    absent = [name for name, ok in cpu["features"].items() if not ok]
    console.print(f"[bold]ISA[/]      {', '.join(present) or 'none of interest'}")
    if absent:
        console.print(f"[dim]         absent: {', '.join(absent)}[/]")
    verdict = report["int8"]
    console.print(f"[bold]int8[/]     {verdict['summary']}")
    console.print(f"[bold]fp16[/]     {'arithmetic in hardware' if verdict['fp16_arithmetic'] else 'no fp16 arithmetic: fp16 models compute in fp32 here (smaller, not faster)'}")
    if verdict["warning"]:
        console.print(f"[bold yellow]warning:[/] {verdict['warning']}")
    if report.get("memory_bytes"):
        console.print(f"[bold]Memory[/]   {report['memory_bytes'] / 2**30:.1f} GiB")
    threads = report["threads"]["env"]
    if threads:
        console.print("[bold]Threads[/]  " + ", ".join(f"{k}={v}" for k, v in threads.items()))
    console.print(f"[bold]Python[/]   {report['python']} on {report['platform']}")

    table = Table(title="Backends", show_edge=False, title_justify="left")
    table.add_column("package")
    table.add_column("version")
    table.add_column("details")
    runtimes = report.get("runtimes", {})
    for name, version in report["backends"].items():
        detail = runtimes.get(name, {})
        text = ", ".join(f"{k}: {_short(v)}" for k, v in detail.items())
        table.add_row(name, version or "[dim]not installed[/]", text)
    console.print(table)


def _short(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)
