"""The pages of docs/ generated from the code (errors.md, cli.md) are what the code gives now."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["error_list.py", "cli_reference.py"])
def test_the_generated_page_is_current(script):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_every_error_reference_is_kebab_case():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import error_list
    finally:
        sys.path.pop(0)
    found = error_list.collect()
    assert len(found) > 150
    for reference in found:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", reference), reference


def test_the_command_reference_names_every_command():
    text = (ROOT / "docs" / "cli.md").read_text()
    for command in ("inspect", "export", "compress", "eval", "profile", "split plan",
                    "split points", "serve", "run", "targets check", "export-triton", "env"):
        assert f"## `edgepipe {command}`" in text, command
