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


def _raised() -> dict[str, list[dict[str, str]]]:
    """Every ``reference=`` in the source, with the error class (or helper) raising it."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import error_list
    finally:
        sys.path.pop(0)
    return error_list.collect()


def test_every_error_reference_is_kebab_case():
    found = _raised()
    assert len(found) > 150
    for reference in found:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", reference), reference


def test_the_error_registry_is_the_raised_references():
    from edgepipe.error_references import REFERENCES

    raised = set(_raised())
    assert not raised - set(REFERENCES), ("raised but not declared in error_references.py "
                                          "(python scripts/error_list.py --add-missing): "
                                          f"{sorted(raised - set(REFERENCES))}")
    assert not set(REFERENCES) - raised, f"declared but never raised: " \
        f"{sorted(set(REFERENCES) - raised)}"
    for name, entry in REFERENCES.items():
        assert entry.name == name and entry.meaning.strip() and entry.exit_code > 0


def test_each_raise_site_exits_as_its_reference_is_declared():
    from edgepipe import errors
    from edgepipe.error_references import REFERENCES

    wrong = []
    for name, uses in _raised().items():
        for use in uses:
            cls = getattr(errors, use["kind"], None)
            if isinstance(cls, type) and issubclass(cls, errors.EdgepipeError) \
                    and name != "internal-error" and cls.exit_code != REFERENCES[name].exit_code:
                wrong.append(f"{name}: {use['kind']} in {use['where']} exits {cls.exit_code}, "
                             f"declared {REFERENCES[name].exit_code}")
    assert not wrong, "\n".join(wrong)


def test_the_command_reference_names_every_command():
    text = (ROOT / "docs" / "cli.md").read_text()
    for command in ("inspect", "export", "compress", "eval", "profile", "split plan",
                    "split points", "serve", "run", "targets check", "export-triton", "env"):
        assert f"## `edgepipe {command}`" in text, command
