"""docs/cli.md is the command line as the code has it now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_command_reference_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "cli_reference.py"),
                             "--check"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_reference_names_every_command():
    text = (ROOT / "docs" / "cli.md").read_text()
    for command in ("inspect", "export", "compress", "eval", "profile", "split plan",
                    "split points", "serve", "run", "targets check", "export-triton", "env"):
        assert f"## `edgepipe {command}`" in text, command
