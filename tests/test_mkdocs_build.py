"""The docs build as a site with ``mkdocs build --strict`` (mkdocs.yml at the root): every
page in the nav, every link to a page and every link to a heading resolving. Offline: the
built-in theme needs no network. Skipped where mkdocs is not installed (it is in the
``dev`` extra)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_docs_build_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (site / "index.html").is_file()
    assert (site / "guide" / "benchmarks" / "index.html").is_file()
