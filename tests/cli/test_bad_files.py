"""Issue 17: crafted and broken model files, and plain bad input, through the real CLI.

Each case must end in exit 1 with ``error: REFERENCE`` and a hint, no traceback and no
"internal-error"; a crafted .pt2 must not run its code (the marker file stays absent)."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import tiny_models

CNN = "builtin:digits-cnn"  # 1x3x32x32 in, 10 classes


def _expect_failure(result, reference: str, *words: str) -> None:
    assert result.code == 1, result
    assert f"error: {reference}" in result.stderr, result
    assert "hint:" in result.stderr, result
    assert "Traceback" not in result.stderr + result.stdout, result
    assert "internal-error" not in result.stderr, result
    for word in words:
        assert word in result.stderr, (word, result)


# --- .pt2 archives that would unpickle ----------------------------------------------------

class _RunsCode:
    """Unpickling this writes the marker file: proof that code from the archive ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > '{self.marker}'",))


def _exported(tmp_path: Path) -> Path:
    path = tmp_path / "clean.pt2"
    model = tiny_models.mlp().eval()
    torch.export.save(torch.export.export(model, (torch.zeros(1, 64),)), path)
    return path


def _rewrite(source: Path, target: Path, change) -> Path:
    """Copy a zip, letting ``change(relative_name, data)`` return new bytes (or None to keep)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info.filename)
            relative = info.filename.split("/", 1)[1]
            replaced = change(relative, data)
            new.writestr(info, data if replaced is None else replaced)
    return target


def _pickled_weight(source: Path, target: Path, payload) -> Path:
    """The archive with its first weight switched to ``use_pickle`` and replaced by a
    torch.save of ``payload``."""
    with zipfile.ZipFile(source) as archive:
        name = next(n for n in archive.namelist() if n.endswith("model_weights_config.json"))
        config = json.loads(archive.read(name))
    first = next(iter(config["config"]))
    config["config"][first]["use_pickle"] = True
    weight_file = "data/weights/" + config["config"][first]["path_name"]

    def change(relative: str, data: bytes):
        if relative.endswith("model_weights_config.json"):
            return json.dumps(config).encode()
        if relative == weight_file:
            buffer = io.BytesIO()
            torch.save(payload(), buffer)
            return buffer.getvalue()
        return None

    return _rewrite(source, target, change)


def _crafted_pt2(tmp_path: Path, marker: Path) -> Path:
    return _pickled_weight(_exported(tmp_path), tmp_path / "crafted.pt2",
                           lambda: _RunsCode(marker))


def _crafted_sample_inputs(tmp_path: Path, marker: Path) -> Path:
    """torch reads sample inputs with weights_only=True, then silently retries with full
    pickle: a crafted sample-inputs member is a second way in."""
    buffer = io.BytesIO()
    torch.save(((_RunsCode(marker),), {}), buffer)

    def change(relative: str, data: bytes):
        return buffer.getvalue() if relative.startswith("data/sample_inputs/") else None

    return _rewrite(_exported(tmp_path), tmp_path / "crafted-inputs.pt2", change)


def _crafted_opaque_constant(tmp_path: Path, marker: Path) -> Path:
    """A constant named opaque_obj_* is read with pickle.loads."""
    import pickle

    def change(relative: str, data: bytes):
        if relative.endswith("model_constants_config.json"):
            return json.dumps({"config": {"c": {"path_name": "opaque_obj_0", "is_param": False,
                                                "use_pickle": True, "tensor_meta": None}}}
                              ).encode()
        return None

    path = _rewrite(_exported(tmp_path), tmp_path / "crafted-constant.pt2", change)
    with zipfile.ZipFile(path, "a") as archive:
        root = archive.namelist()[0].split("/", 1)[0]
        archive.writestr(f"{root}/data/constants/opaque_obj_0", pickle.dumps(_RunsCode(marker)))
    return path


CRAFTED = {"pickled-weight": _crafted_pt2, "sample-inputs": _crafted_sample_inputs,
           "opaque-constant": _crafted_opaque_constant}


def _verb_args(verb: str, path: Path, tmp_path: Path) -> list[object]:
    if verb == "inspect":
        return ["inspect", path]
    data = tmp_path / "data.npz"
    np.savez(data, x=np.zeros((4, 64), np.float32), y=np.zeros(4, np.int64))
    if verb == "eval":
        return ["eval", path, "--data", data, "--split", "all"]
    return ["profile", path, "--runs", 2, "--duration", 0, "--warmup", 0, "--no-per-layer",
            "--no-energy"]


@pytest.mark.parametrize("crafted", list(CRAFTED))
@pytest.mark.parametrize("verb", ["inspect", "eval", "profile"])
def test_crafted_pt2_runs_no_code(cli, tmp_path, verb, crafted):
    marker = tmp_path / "marker"
    path = CRAFTED[crafted](tmp_path, marker)
    result = cli(*_verb_args(verb, path, tmp_path))
    assert not marker.exists(), "code from the archive ran"
    _expect_failure(result, "pickle-refused", "--trust-pickle")


def test_trust_pickle_loads_a_legitimate_pickled_weight(cli, tmp_path):
    clean = _exported(tmp_path)
    with zipfile.ZipFile(clean) as archive:
        name = next(n for n in archive.namelist() if n.endswith("model_weights_config.json"))
        first = next(iter(json.loads(archive.read(name))["config"].values()))
        weight = torch.frombuffer(bytearray(archive.read(
            f"{name.split('/')[0]}/data/weights/{first['path_name']}")), dtype=torch.float32)
    shape = [d["as_int"] for d in first["tensor_meta"]["sizes"]]
    tensor = torch.nn.Parameter(weight[: int(np.prod(shape))].reshape(shape).clone())
    path = _pickled_weight(clean, tmp_path / "pickled.pt2", lambda: tensor)
    _expect_failure(cli("inspect", path), "pickle-refused", "--trust-pickle")
    for verb in ("inspect", "eval", "profile"):
        result = cli(*_verb_args(verb, path, tmp_path), "--trust-pickle")
        assert result.code == 0, (verb, result)


def test_a_clean_pt2_needs_no_trust(cli, tmp_path):
    assert cli("inspect", _exported(tmp_path)).code == 0
