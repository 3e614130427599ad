"""Exit codes and error rendering shared by every command."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_usage_error_exits_2(cli):
    result = cli("no-such-command")
    assert result.code == 2


def test_version(cli):
    result = cli("--version")
    assert result.code == 0 and "edgepipe 0.1.0" in result.stdout


def test_expected_failure_exits_1_without_traceback(cli, tmp_path):
    result = cli("inspect", tmp_path / "missing.onnx")
    assert result.code == 1, result
    assert "error: model-not-found" in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr


def test_json_error_document(cli, tmp_path):
    result = cli("inspect", tmp_path / "missing.onnx", "--json")
    assert result.code == 1
    document = result.json()
    assert document["ok"] is False and document["schema_version"] == 1
    assert document["error"]["reference"] == "model-not-found"


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(cli, tmp_path, where):
    """--debug is global: before the subcommand or after its arguments alike."""
    args = ["inspect", tmp_path / "missing.onnx"]
    result = cli(*(["--debug", *args] if where == "before" else [*args, "--debug"]))
    assert result.code == 1
    assert "Traceback" in result.stderr and "model-not-found" in result.stderr


def test_console_script_runs_as_a_process():
    """The installed entry point, as a user runs it: exit code and streams."""
    proc = subprocess.run([sys.executable, "-m", "edgepipe", "inspect", "nope.onnx"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "error: model-not-found" in proc.stderr
