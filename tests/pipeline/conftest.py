"""The digits-MLP recipe run once per session, shared by the run and browser tests."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

RECIPE = """\
name: digits-mlp
model:
  spec: builtin:digits-mlp
data:
  spec: builtin:digits
variants:
  - name: float
    method: float
  - name: int8
    method: int8
    formats: [onnx, tflite]
targets: [host, rpi5, stm32f746]
budget:
  max_drop: 2
profile:
  runs: 5
  duration: 0.05
  warmup: 2
"""


@pytest.fixture
def recipe_text() -> str:
    return RECIPE


@pytest.fixture(scope="session")
def first_run(tmp_path_factory):
    """The first run, and its folder (shared: the later tests copy it)."""
    from edgepipe.cli import common
    from edgepipe.cli.main import run

    folder = tmp_path_factory.mktemp("run")
    recipe = folder / "recipe.yaml"
    recipe.write_text(RECIPE)
    out, err = io.StringIO(), io.StringIO()
    common.state.__init__()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(["run", str(recipe), "-o", str(folder / "out"), "--json"])
    assert code == 0, err.getvalue()[-3000:]
    return folder, json.loads(out.getvalue())["result"], err.getvalue()


