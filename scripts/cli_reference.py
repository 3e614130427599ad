"""Write docs/cli.md: every command of ``edgepipe`` with its arguments and options, read from
the Typer app itself.

    python scripts/cli_reference.py            # rewrite docs/cli.md
    python scripts/cli_reference.py --check    # exit 1 if docs/cli.md is not current

A test runs the check, so the reference cannot fall behind the code.
"""

from __future__ import annotations

import enum
import sys
import typing
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "cli.md"

HEADER = """\
# Command reference

Generated from the command-line app by `python scripts/cli_reference.py` (a test checks it is
current); `edgepipe COMMAND --help` shows the same. Results go to stdout (`--json`: exactly
one JSON document), progress and logs to stderr. Exit codes and every error reference are in
[errors.md](errors.md).
"""


def _is_flag(param: object) -> bool:
    return bool(getattr(param, "is_flag", False))


def _default(param: object) -> str:
    value = getattr(param, "default", None)
    if _is_flag(param):
        secondary = getattr(param, "secondary_opts", [])
        if secondary:
            return f"`{param.opts[0] if value else secondary[0]}`"  # type: ignore[attr-defined]
        return ""
    if value is None or callable(value) or value == () or value == []:
        return ""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v.value if isinstance(v, enum.Enum) else v) for v in value)
    return f"`{value}`"


def _kind(param: object) -> str:
    if _is_flag(param):
        return "flag"
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", str)
    many = ""
    for _ in range(3):  # unwrap X | None, list[X]
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if typing.get_origin(annotation) is list:
            many = " (repeat)"
        if not args:
            break
        annotation = args[0]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation) + many
    name = getattr(annotation, "__name__", str(annotation))
    return {"str": "text", "Path": "path"}.get(name, name) + many


def _cell(text: str) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _command(path: str, command: object, lines: list[str]) -> None:
    commands = getattr(command, "commands", None)
    if commands:
        for name in sorted(commands):
            _command(f"{path} {name}", commands[name], lines)
        return
    arguments, options = _params(command)
    usage = " ".join([path, *(a.name.upper() for a in arguments), "[OPTIONS]"])
    lines += [f"## `{path}`", "", f"`{usage}`", ""]
    help_text = (getattr(command, "help", None) or "").strip()
    if help_text:
        lines += [" ".join(help_text.split()), ""]
    _table(arguments, options, lines)


def _params(command: object) -> tuple[list, list]:
    """A command's arguments and options (--help and hidden ones left out)."""
    params = [p for p in getattr(command, "params", []) if not getattr(p, "hidden", False)]
    return ([p for p in params if p.param_type_name == "argument"],
            [p for p in params if p.param_type_name == "option" and p.name != "help"])


def _table(arguments: list, options: list, lines: list[str]) -> None:
    if arguments or options:
        lines += ["| argument or option | takes | default | what it is |",
                  "| --- | --- | --- | --- |"]
    for arg in arguments:
        lines.append(f"| `{arg.name.upper()}` | {_kind(arg)} | | "
                     f"{_cell(getattr(arg, 'help', '') or '')} |")
    for option in options:
        names = ", ".join(f"`{o}`" for o in [*option.opts, *option.secondary_opts])
        lines.append(f"| {names} | {_kind(option)} | {_default(option)} | "
                     f"{_cell(option.help or '')}{' (required)' if option.required else ''} |")
    lines.append("")


def render() -> str:
    from edgepipe.cli.main import app

    group = typer.main.get_command(app)
    lines = [HEADER, "## Global options", "",
             "Given before the command or anywhere after it (`edgepipe -q export ...` or "
             "`edgepipe export ... -q`).", ""]
    _table([], [o for o in _params(group)[1] if o.name not in (
        "version", "install_completion", "show_completion")], lines)
    _command("edgepipe", group, lines)
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    sys.path.insert(0, str(Path(__file__).parent))
    from generated_page import write_or_check

    return write_or_check(OUTPUT, render, __doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
