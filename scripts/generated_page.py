"""What the scripts that write a page of docs/ from the code share: write it, or ``--check``
that the committed page is what the code gives now (tests run the check)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_or_check(output: Path, render: Callable[[], str], description: str) -> int:
    """The ``main`` of a page generator: exit status 0, or 1 when ``--check`` finds the page
    stale."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="fail if the page is not current")
    args = parser.parse_args()
    text = render()
    name = output.relative_to(ROOT)
    if args.check:
        if not output.exists() or output.read_text() != text:
            print(f"{name} is not current: run python scripts/{Path(sys.argv[0]).name}",
                  file=sys.stderr)
            return 1
        return 0
    output.write_text(text)
    print(f"wrote {name}", file=sys.stderr)
    return 0
