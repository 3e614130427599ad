"""Write docs/errors.md: every error reference edgepipe prints (``error: REFERENCE``), with
the message and hint it comes with, read from the source itself.

    python scripts/error_list.py            # rewrite docs/errors.md
    python scripts/error_list.py --check    # exit 1 if docs/errors.md is not current

A test runs the check, so the list cannot fall behind the code.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "edgepipe"
OUTPUT = ROOT / "docs" / "errors.md"

HEADER = """\
# Error references

Every failure edgepipe expects is printed as

```
error: REFERENCE
What is wrong.
hint: what to do instead.
```

`--json` puts the same reference, message and hint in the document's `error`, with `"ok":
false` (as whenever the exit status is not 0). `internal-error` is the one reference that is
never expected: it means a bug in edgepipe or in a backend, and `--debug` shows the traceback
to report.

This page is generated from the source by `python scripts/error_list.py` (a test checks it is
current). `{...}` stands for a value filled in when the error is raised.
"""


def _exit_codes() -> str:
    sys.path.insert(0, str(ROOT / "src"))
    from edgepipe.errors import EXIT_CODES

    rows = [f"| {code} | {meaning} |" for code, meaning in sorted(EXIT_CODES.items())]
    return "\n".join(["## Exit status", "", "| status | meaning |", "| --- | --- |", *rows, ""])


def _text(node: ast.AST | None) -> str | None:
    """A string argument as written: literal text, f-string placeholders as ``{...}``."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "{...}"
                       for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        return (left or "{...}") + (right or "{...}")
    if isinstance(node, ast.IfExp):
        return _text(node.body) or _text(node.orelse)
    return None


def _clean(text: str | None, limit: int = 240) -> str:
    if not text:
        return ""
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def collect() -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = defaultdict(list)
    for path in sorted(SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        where = str(path.relative_to(ROOT / "src"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):  # class-level defaults (errors.py)
                for item in node.body:
                    if isinstance(item, ast.Assign) and any(
                            isinstance(t, ast.Name) and t.id == "reference"
                            for t in item.targets) and isinstance(item.value, ast.Constant):
                        doc = ast.get_docstring(node) or ""
                        found[item.value.value].append(
                            {"where": where, "message": doc.splitlines()[0] if doc else "",
                             "hint": "", "kind": node.name})
            if not isinstance(node, ast.Call):
                continue
            keywords = {k.arg: k.value for k in node.keywords if k.arg}
            reference = keywords.get("reference")
            if not (isinstance(reference, ast.Constant) and isinstance(reference.value, str)):
                continue
            func = node.func
            kind = func.id if isinstance(func, ast.Name) else (
                func.attr if isinstance(func, ast.Attribute) else "")
            message = _text(node.args[0]) if node.args else _text(keywords.get("message"))
            found[reference.value].append({"where": where, "message": _clean(message),
                                           "hint": _clean(_text(keywords.get("hint"))),
                                           "kind": kind})
    return dict(sorted(found.items()))


def render(found: dict[str, list[dict[str, str]]]) -> str:
    lines = [HEADER, _exit_codes(), f"{len(found)} references.", ""]
    for reference, uses in found.items():
        lines += [f"## `{reference}`", ""]
        seen = set()
        for use in uses:
            key = (use["message"], use["hint"])
            if key in seen:
                continue
            seen.add(key)
            text = use["message"] or f"({use['kind']})"
            lines.append(f"- {text} — `{use['where']}`")
            if use["hint"]:
                lines.append(f"  hint: {use['hint']}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    sys.path.insert(0, str(Path(__file__).parent))
    from generated_page import write_or_check

    return write_or_check(OUTPUT, lambda: render(collect()), __doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
