"""docs/errors.md lists every error reference the code can print, as the code has it now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_error_list_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "error_list.py"),
                             "--check"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_every_reference_is_kebab_case():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import error_list
    finally:
        sys.path.pop(0)
    import re

    found = error_list.collect()
    assert len(found) > 150
    for reference in found:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", reference), reference
