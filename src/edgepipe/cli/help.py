"""``--help`` that fits the terminal: options grouped in panels, nothing cut.

Typer's own Rich help lays every option out as a row of a seven-column table; at 80 columns
the names column shrinks and long names end in an ellipsis (``--activation-a…``), which
leaves the user with an option they cannot type. Here each option is its names, metavar and
help from click's own help record, laid out in two columns when the names fit beside the
help and stacked (names, then the help indented below) when they do not, wrapped by words at
the console's width. Options are grouped by their ``rich_help_panel`` (a method or a
concern); docstrings are re-flowed paragraph by paragraph, so their source line breaks do
not show.
"""

from __future__ import annotations

import textwrap
from typing import Any

from rich.console import Console
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

INDENT = 2
GAP = 2
NAMES_MAX = 30  # beyond this many characters, the help goes on the lines below the names


def reflow(text: str) -> list[str]:
    """Paragraphs of ``text`` (blank-line separated) with their line breaks removed; lines
    starting a list item (``-``, ``*``, ``1.``) or indented stay lines of their own."""
    paragraphs: list[str] = []
    for block in textwrap.dedent(text).strip().split("\n\n"):
        lines: list[str] = []
        for line in block.splitlines():
            item = line.lstrip().startswith(("- ", "* ")) or line.startswith(" ") \
                or line.lstrip()[:3].rstrip(".").isdigit()
            if lines and not item:
                lines[-1] += " " + line.strip()
            else:
                lines.append(line.rstrip())
        paragraphs.append("\n".join(lines))
    return paragraphs


def _wrap(text: str, width: int, indent: int = 0) -> list[str]:
    """``text`` wrapped by words to ``width`` columns after ``indent`` spaces (list items
    hang under their text); a word longer than the line is kept whole, never cut."""
    out: list[str] = []
    for line in text.splitlines() or [""]:
        stripped = line.strip()
        lead = indent + len(line) - len(line.lstrip())
        hang = lead + 2 if stripped[:2] in ("- ", "* ") else lead
        out.extend(textwrap.wrap(stripped, max(width, hang + 20), initial_indent=" " * lead,
                                 subsequent_indent=" " * hang, break_long_words=False,
                                 break_on_hyphens=False) or [""])
    return out


def _records(command: Any, ctx: Any) -> dict[str, list[tuple[str, str]]]:
    """Help records (names with metavar, help) per panel, in the order they first appear:
    the arguments, the options without a panel, then each named panel."""
    panels: dict[str, list[tuple[str, str]]] = {"Arguments": [], "Options": []}
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if param.param_type_name == "argument":
            name = _argument(param)
            help_text = getattr(param, "help", None) or ""
            if param.required:
                help_text += " [required]"
            panels["Arguments"].append((name, help_text.strip()))
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        names = names.replace("|", " | ")  # choices wrap between values, never inside one
        help_text = help_text.replace("[default: ", "[default:\xa0")  # kept on one line
        panel = getattr(param, "rich_help_panel", None) or "Options"
        panels.setdefault(panel, []).append((names, help_text))
    return {name: rows for name, rows in panels.items() if rows}


def _rows(rows: list[tuple[str, str]], width: int) -> list[Text]:
    fitting = [len(names) for names, _ in rows if len(names) <= NAMES_MAX]
    column = max(fitting, default=0) + GAP
    lines: list[Text] = []
    for names, help_text in rows:
        help_width = width - INDENT - column
        if len(names) <= NAMES_MAX and help_width >= 30:
            wrapped = _wrap(help_text, help_width)
            first = Text(" " * INDENT)
            first.append(names.ljust(column), style="bold cyan")
            first.append(wrapped[0])
            lines.append(first)
            lines.extend(Text(" " * (INDENT + column) + rest) for rest in wrapped[1:])
        else:
            for part in _wrap(names, width, INDENT):
                lines.append(Text(part, style="bold cyan"))
            lines.extend(Text(line) for line in _wrap(help_text, width, INDENT + 4))
    return lines


def _argument(param: Any) -> str:
    name = str(param.metavar or param.display_name_raw or param.name).upper()
    name += "..." if param.nargs != 1 else ""
    return name if param.required else f"[{name}]"


def render_help(command: Any, ctx: Any) -> None:
    """Print ``command``'s help on stdout at the console's width."""
    console = Console(highlight=False, soft_wrap=True)
    width = min(console.width, 100)
    group = hasattr(command, "list_commands")
    pieces = ["[OPTIONS]", *(_argument(p) for p in command.get_params(ctx)
                             if p.param_type_name == "argument")]
    if group:
        pieces.append("COMMAND [ARGS]...")
    console.print(Text("Usage: ", style="bold").append(" ".join([ctx.command_path, *pieces]),
                                                        style=""))
    console.print()
    for paragraph in reflow(command.help or ""):
        for line in _wrap(paragraph, width):
            console.print(line, markup=False)
        console.print()
    for panel, rows in _records(command, ctx).items():
        console.print(Text(panel, style="bold"))
        for line in _rows(rows, width):
            console.print(line)
        console.print()
    if group:
        commands = [(name, command.get_command(ctx, name)) for name in command.list_commands(ctx)]
        rows = [(name, sub.get_short_help_str(limit=500)) for name, sub in commands
                if sub is not None and not sub.hidden]
        if rows:
            console.print(Text("Commands", style="bold"))
            for line in _rows(rows, width):
                console.print(line)
            console.print()


class HelpCommand(TyperCommand):
    """A Typer command whose ``--help`` is :func:`render_help`'s."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        render_help(self, ctx)


class HelpGroup(TyperGroup):
    """A Typer group whose ``--help`` is :func:`render_help`'s, and whose commands' too."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        render_help(self, ctx)
