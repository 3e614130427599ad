"""``--help`` at 80 columns: every option name whole, no line wider than the terminal,
options grouped in panels."""

from __future__ import annotations

import pytest
import typer.main
from typer.testing import CliRunner

from edgepipe.cli.main import app


def _help(path: list[str]) -> str:
    done = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80", "NO_COLOR": "1"})
    assert done.exit_code == 0, done.output
    return done.stdout


def _commands() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = [[]]
    for name, command in root.commands.items():
        paths.append([name])
        paths.extend([name, sub] for sub in getattr(command, "commands", {}))
    return paths


def _option_names(path: list[str]) -> list[str]:
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    names = []
    for param in command.params:
        if param.param_type_name == "option" and not param.hidden:
            names.extend(o for o in [*param.opts, *param.secondary_opts] if o.startswith("--"))
    return names


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p) or "edgepipe")
def test_help_fits_80_columns_with_every_name_whole(path):
    out = _help(path)
    lines = out.splitlines()
    assert lines[0].startswith("Usage: edgepipe")
    assert "…" not in out
    too_wide = [line for line in lines if len(line) > 80]
    assert not too_wide, too_wide
    words = set(out.replace(",", " ").split())
    missing = [name for name in _option_names(path) if name not in words]
    assert not missing, f"options not shown whole: {missing}"


def test_compress_options_are_grouped_by_method():
    out = _help(["compress"])
    headings = [line for line in out.splitlines() if line and not line.startswith(" ")]
    for panel in ("int8 and int8-dynamic", "lowrank", "binary", "Loading the model", "Data"):
        assert panel in headings
    lowrank = out.index("\nlowrank\n")
    assert lowrank < out.index("--rank-selection") < out.index("\nbinary\n")


def test_docstrings_are_reflowed_not_hard_wrapped():
    from edgepipe.cli.help import reflow

    text = "First line of a paragraph\ncontinues here.\n\n- an item\n- another\n"
    assert reflow(text) == ["First line of a paragraph continues here.",
                            "- an item\n- another"]


def test_targets_list_shows_every_name_whole_at_80_columns():
    from edgepipe.devices.catalog import load_catalog

    done = CliRunner().invoke(app, ["targets", "list"], env={"COLUMNS": "80", "NO_COLOR": "1"})
    assert done.exit_code == 0, done.output
    assert "…" not in done.stdout
    words = set(done.stdout.split())
    assert set(load_catalog(detect_host=False)) <= words
