"""The core install (`pip install edgepipe`, no extras): ONNX export, int8 and low-rank in ONNX
Runtime and a profile here work; a format or method whose backend is an extra ends with exit status 4 and
the exact pip command, and does not sink the formats that are installed.

These run only where the extras are absent (CI's second, core-only venv); with every backend
installed they skip.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

CNN = "builtin:digits-cnn"
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is not None
    or importlib.util.find_spec("litert_torch") is not None,
    reason="the extras are installed: this is the core-only install's test")


def test_the_core_exports_onnx_and_quantizes_int8(cli, tmp_path):
    out = tmp_path / "out"
    assert cli("export", CNN, "-f", "onnx", "-o", out).code == 0
    result = cli("compress", CNN, "--method", "int8", "-f", "onnx", "--data", "builtin:digits",
                 "-o", tmp_path / "int8", "--json")
    assert result.code == 0, result
    [artifact] = result.json()["result"]["artifacts"]
    assert artifact["metrics"]["value"] > 0.9  # top-1 of the int8 artifact on the eval split
    lowrank = cli("compress", CNN, "--method", "lowrank", "--epochs", "0", "-f", "onnx",
                  "--data", "builtin:digits", "--no-latency-check", "-o", tmp_path / "lr")
    assert lowrank.code == 0, lowrank
    profile = cli("profile", out / "digits-cnn.onnx", "--runs", "5", "--duration", "0.05",
                  "--no-energy", "--json")
    assert profile.code == 0, profile
    latency = profile.json()["result"]["latency"]
    assert latency["label"] == "measured" and latency["steady"]["p50_s"] > 0


@pytest.mark.parametrize("args, extra", [
    (("export", CNN, "-f", "openvino"), "openvino"),
    (("export", CNN, "-f", "tflite"), "tflite"),
    (("export", CNN, "-f", "executorch"), "executorch"),
    (("compress", CNN, "--method", "w4a8", "--data", "builtin:digits"), "lowbit"),
    (("compress", CNN, "--method", "binary", "--data", "builtin:digits"), "lowbit"),
])
def test_a_missing_backend_names_its_extra(cli, tmp_path, args, extra):
    result = cli(*args, "-o", tmp_path / "out")
    assert result.code == 4, result
    assert "error: backend-missing" in result.stderr
    assert f"pip install 'edgepipe[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_backend_does_not_sink_the_installed_format(cli, tmp_path):
    out = tmp_path / "out"
    result = cli("export", CNN, "-f", "onnx", "-f", "openvino", "-o", out)
    assert result.code == 3, result
    assert "edgepipe[openvino]" in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert [a["format"] for a in manifest["artifacts"]] == ["onnx"]


def test_serve_without_its_extra(cli, tmp_path):
    result = cli("serve", tmp_path)
    assert result.code in (1, 4), result  # no split here; never a traceback
    assert "Traceback" not in result.stderr and "internal-error" not in result.stderr
