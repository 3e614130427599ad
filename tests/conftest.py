"""Shared fixtures. ``tiny_models`` lives beside this file and is importable from tests."""

from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


class Result:
    """What one CLI call gave: exit code, stdout and stderr."""

    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code, self.stdout, self.stderr = code, stdout, stderr

    def json(self) -> dict:
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return (f"Result(code={self.code}, stdout={self.stdout[-3000:]!r}, "
                f"stderr={self.stderr[-3000:]!r})")


@pytest.fixture
def cli():
    """Run the real edgepipe CLI in-process: ``cli("inspect", "m.onnx", "--json")``."""
    from edgepipe.cli import common
    from edgepipe.cli.main import run

    def invoke(*args: object) -> Result:
        out, err = io.StringIO(), io.StringIO()
        common.state.__init__()  # each call starts from a fresh state, as a new process would
        with redirect_stdout(out), redirect_stderr(err):
            code = run([str(a) for a in args])
        return Result(code, out.getvalue(), err.getvalue())

    return invoke
