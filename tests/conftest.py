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


# Digits models with their seeded splits, shared by the compression and target tests.

def _digits(name: str):
    from edgepipe.data import load_data_for_model, make_splits
    from edgepipe.model import load_model

    loaded = load_model(f"builtin:{name}")
    dataset = load_data_for_model("builtin:digits", loaded.inputs)
    return loaded, make_splits(dataset, seed=0, calib_size=256)


@pytest.fixture(scope="session")
def digits_cnn():
    """builtin:digits-cnn and builtin:digits split (calib 256 from train, eval 359)."""
    return _digits("digits-cnn")


@pytest.fixture(scope="session")
def entropy_split_dir(tmp_path_factory):
    """An entropy-coded split of the digits CNN (`split --entropy`, short training), shared
    by the split and serve tests; its result is the manifest's split step."""
    from edgepipe.cli.main import run

    out = tmp_path_factory.mktemp("entropy-split")
    code = run(["split", "builtin:digits-cnn", "--at", "pool2", "--bottleneck", "4", "--data",
                "builtin:digits", "-o", str(out), "--distill-epochs", "4",
                "--finetune-epochs", "2", "--entropy", "--rate-weight", "1e-3", "--json"])
    assert code == 0
    return out


@pytest.fixture(scope="session")
def digits_mlp():
    return _digits("digits-mlp")


@pytest.fixture(scope="session")
def tflite_models(tmp_path_factory, digits_cnn):
    """digits CNN as int8, fp32 and fp16 .tflite, and a 2.4 MB float MLP."""
    from edgepipe.compress.api import compress
    from edgepipe.compress.config import make_config
    from edgepipe.export.api import export_model
    from edgepipe.model import load_model

    out = tmp_path_factory.mktemp("tflm")
    loaded, splits = digits_cnn
    compress(loaded, make_config("int8", formats=("tflite",)), out / "int8", splits)
    compress(loaded, make_config("fp16", formats=("tflite",)), out / "fp16")
    export_model(loaded, out / "fp32", formats=("tflite",))
    export_model(load_model("tiny_models:wide_mlp", input_shape=(1, 64)), out / "wide",
                 formats=("tflite",))
    return {"int8": next((out / "int8").glob("*.int8.tflite")),
            "fp16": next((out / "fp16").glob("*fp16*.tflite")),
            "fp32": out / "fp32" / "digits-cnn.tflite", "wide": next((out / "wide").glob("*.tflite"))}


@pytest.fixture(scope="session")
def digits_artifacts(tmp_path_factory):
    """OUT with digits-cnn.onnx / .xml / .tflite and manifest.json, as `edgepipe export` writes."""
    from edgepipe.export.api import export_model

    out = tmp_path_factory.mktemp("digits-export")
    export_model("builtin:digits-cnn", out, formats=("onnx", "openvino", "tflite"))
    return out
