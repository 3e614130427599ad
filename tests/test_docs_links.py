"""Every relative link in README.md and docs/**/*.md points to a file of the repository.

Links to the web (``http:``, ``https:``, ``mailto:``) and anchors within the same page are
not checked; for ``page.md#anchor`` only the page is. A link that leaves the repository
(``../../elsewhere``) or is absolute (``/etc/...``) is an error: a reader of the docs on
GitHub or in a clone has nothing there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target), with an optional "title"; <target> allowed
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:, ...


def links(page: Path) -> list[str]:
    """The link targets of a Markdown page, outside code blocks and inline code."""
    text = INLINE_CODE.sub("", FENCE.sub("", page.read_text(encoding="utf-8")))
    return LINK.findall(text) + REFERENCE.findall(text)


def problem(page: Path, target: str) -> str | None:
    """Why ``target`` (a link on ``page``) is broken, or None."""
    if EXTERNAL.match(target) or target.startswith("#"):
        return None
    path = target.split("#", 1)[0].split("?", 1)[0]
    if path.startswith("/"):
        return "absolute path"
    resolved = (page.parent / path).resolve()
    if not resolved.is_relative_to(ROOT):
        return "outside the repository"
    if not resolved.exists():
        return "no such file"
    return None


def test_the_pages_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/README.md", "docs/guide/run.md",
            "docs/guide/benchmarks.md"} <= names


def test_the_link_finder() -> None:
    page = ROOT / "docs" / "guide" / "x.md"
    assert problem(page, "run.md#every-recipe-key") is None
    assert problem(page, "https://example.com/x.md") is None
    assert problem(page, "../../../outside.md") == "outside the repository"
    assert problem(page, "missing.md") == "no such file"
    assert problem(page, "/etc/passwd") == "absolute path"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    broken = [f"{target} ({why})" for target in links(page)
              if (why := problem(page, target)) is not None]
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {', '.join(broken)}"


def test_the_readme_links_the_docs_index() -> None:
    assert "docs/README.md" in links(ROOT / "README.md")


def test_the_index_lists_every_page() -> None:
    index = ROOT / "docs" / "README.md"
    listed = {(index.parent / t.split("#", 1)[0]).resolve() for t in links(index)
              if not EXTERNAL.match(t)}
    pages = [p for p in PAGES if p.parent != ROOT and p != index
             and p.parent.name != "schemas"] + [ROOT / "docs" / "schemas" / "README.md"]
    missing = [p.relative_to(ROOT).as_posix() for p in pages if p.resolve() not in listed]
    assert not missing, f"docs/README.md does not list: {', '.join(missing)}"
