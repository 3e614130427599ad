"""The split whose tail the server tests serve (built once for the directory)."""

from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture(scope="session")
def split_dir(tmp_path_factory):
    from edgepipe.cli.main import run

    out = tmp_path_factory.mktemp("split")
    # ExecuTorch's tail too, where the extra is installed (CI installs it)
    more = ["-f", "executorch"] if importlib.util.find_spec("executorch") else []
    code = run(["split", "builtin:digits-cnn", "--at", "pool2", "--bottleneck", "4", "--data",
                "builtin:digits", "-o", str(out), "--distill-epochs", "3",
                "--finetune-epochs", "2", "-f", "onnx", "-f", "openvino", *more, "--json"])
    assert code == 0
    return out
